"""emqpy/rates.py: EMQX's metrics-worker rates (current, max, 5-minute mean of 10 s samples)."""
from emqpy.rates import SAMPLES_5M, RateMeter


def test_current_max_and_mean_of_the_samples_there_are():
    m = RateMeter()
    assert m.view() == {"rate": 0.0, "rate_max": 0.0, "rate_last5m": 0.0}
    m.sample(100)  # 100 in 10 s
    assert m.view() == {"rate": 10.0, "rate_max": 10.0, "rate_last5m": 10.0}
    m.sample(100)  # nothing new
    assert m.view() == {"rate": 0.0, "rate_max": 10.0, "rate_last5m": 5.0}
    m.sample(130)
    assert m.view() == {"rate": 3.0, "rate_max": 10.0, "rate_last5m": round(13 / 3, 2)}


def test_the_mean_covers_the_last_five_minutes_only():
    m = RateMeter()
    count = 0
    m.sample(count := count + 600)  # one busy sample: 60/s
    for _ in range(SAMPLES_5M - 1):
        m.sample(count := count + 10)
    assert m.view()["rate_last5m"] == round((60 + 29 * 1) / 30, 2)
    m.sample(count := count + 10)  # the busy sample leaves the window
    assert m.view() == {"rate": 1.0, "rate_max": 60.0, "rate_last5m": 1.0}


def test_a_counter_that_went_back_counts_as_no_increase():
    m = RateMeter(count=50)
    m.sample(20)
    assert m.current == 0.0
    m.sample(40)
    assert m.current == 2.0
