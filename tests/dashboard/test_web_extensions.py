"""The dashboard's pages of the MQTT extensions and the system pages EMQX's enterprise console
has (delayed publish, topic rewrite, auto subscribe, topic metrics, slow subscriptions, backup,
durable sessions), each driven in Chromium against a started broker with real MQTT clients;
and the dashboard worked with the keyboard alone."""
from __future__ import annotations

import re
import tarfile
import time

import httpx
import pytest
from playwright.sync_api import expect

from support.browser import ACCESSIBLE_NAME_CHECK, login, needs_browser
from support.mqttclient import client, uid
from support.waiting import wait_until

pytestmark = needs_browser


def confirm(page):
    page.get_by_role("alertdialog").get_by_role("button", name="Confirm").click()


def test_delayed_messages_listed_viewed_and_deleted(page, api):
    one, many = f"dash/delayed/{uid()}", f"dash/delayed/{uid()}"
    c = client(api)
    c.publish(f"$delayed/60/{one}", "later, please", qos=1)
    c.publish(f"$delayed/60/{many}", "a", qos=1)
    c.publish(f"$delayed/90/{many}", "b", qos=1)
    c.close()

    def held(topic):
        rows = api.get("/mqtt/delayed/messages", params={"limit": 1000})["data"]
        return [r for r in rows if r["topic"] == topic]
    wait_until(lambda: len(held(one)) == 1 and len(held(many)) == 2)
    login(page, api, to="#/login?to=/delayed-pub")
    page.get_by_role("button", name=f"Open Payload {one}").click()
    expect(page.get_by_role("dialog").get_by_text("later, please")).to_be_visible()
    page.get_by_role("dialog").get_by_role("button", name="Close").click()
    page.get_by_role("button", name=f"Delete {one}").click()
    confirm(page)
    page.get_by_role("cell", name=one, exact=True).wait_for(state="detached")
    assert held(one) == []
    # every message of a topic at once
    expect(page.get_by_role("cell", name=many, exact=True)).to_have_count(2)
    page.get_by_label("Topic to delete").fill(many)
    page.get_by_role("button", name="Delete by Topic").click()
    confirm(page)
    page.get_by_role("cell", name=many, exact=True).first.wait_for(state="detached")
    assert held(many) == []


def test_delayed_publish_settings_saved_and_obeyed(page, make_broker):
    node = make_broker()
    login(page, node, to="#/login?to=/delayed-pub-configuration")
    page.get_by_label("max_delayed_messages", exact=True).fill("1")
    page.get_by_role("button", name="Save").click()
    wait_until(lambda: node.get("/mqtt/delayed")["max_delayed_messages"] == 1)
    c = client(node)
    c.publish("$delayed/60/dash/a", "1", qos=1)
    c.publish("$delayed/60/dash/b", "2", qos=1)  # over the limit: dropped
    c.close()
    time.sleep(0.3)
    assert [r["topic"] for r in node.get("/mqtt/delayed/messages")["data"]] == ["dash/a"]
    # disabled: the list page says so
    page.get_by_label("enable", exact=True).uncheck()
    page.get_by_role("button", name="Save").click()
    wait_until(lambda: node.get("/mqtt/delayed")["enable"] is False)
    page.get_by_role("link", name="Delayed Messages").click()
    expect(page.get_by_text("Delayed publish is disabled")).to_be_visible()


def test_topic_rewrite_rules_rewrite_and_keep_their_order(page, make_broker):
    node = make_broker()
    login(page, node, to="#/login?to=/topic-rewrite")

    def add(source, regex, dest):
        page.get_by_role("button", name="Create").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_label("Source Topic").fill(source)
        dialog.get_by_label("Regular Expression").fill(regex)
        dialog.get_by_label("Destination Topic").fill(dest)
        dialog.get_by_role("button", name="Confirm").click()
        page.get_by_role("cell", name=source, exact=True).wait_for()
    add("dash/rw/#", "^dash/rw/(.+)$", "dash/rewritten/$1")
    sub = client(node)
    sub.subscribe("dash/rewritten/#", qos=1)
    pub = client(node)
    pub.publish("dash/rw/one", "moved", qos=1)
    msg = sub.get()
    assert (msg.topic, msg.payload) == ("dash/rewritten/one", b"moved")
    # a second rule, moved above the first: the order is the API's list order
    add("dash/other/#", "^dash/other/(.+)$", "dash/o/$1")

    def sources():
        return [r["source_topic"] for r in node.get("/mqtt/topic_rewrite")]
    assert sources() == ["dash/rw/#", "dash/other/#"]
    page.get_by_role("button", name="Move up dash/other/#").click()
    wait_until(lambda: sources() == ["dash/other/#", "dash/rw/#"])
    expect(page.get_by_role("row").nth(1)).to_contain_text("dash/other/#")  # (header is row 0)
    # edited: the rule writes to another topic
    page.get_by_role("button", name="Edit dash/rw/#").click()
    page.get_by_role("dialog").get_by_label("Destination Topic").fill("dash/edited/$1")
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    wait_until(lambda: node.get("/mqtt/topic_rewrite")[1]["dest_topic"] == "dash/edited/$1")
    for source in ("dash/rw/#", "dash/other/#"):
        page.get_by_role("button", name=f"Delete {source}").click()
        confirm(page)
        page.get_by_role("cell", name=source, exact=True).wait_for(state="detached")
    assert node.get("/mqtt/topic_rewrite") == []
    pub.publish("dash/rw/two", "kept", qos=1)
    sub.subscribe("dash/rw/#", qos=1)
    pub.publish("dash/rw/three", "kept", qos=1)
    assert sub.get().topic == "dash/rw/three"
    sub.close(), pub.close()


def test_auto_subscribe_topics_given_to_connecting_clients(page, make_broker):
    node = make_broker()
    login(page, node, to="#/login?to=/auto-sub")
    page.get_by_role("button", name="Create").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Topic").fill("dash/auto/${clientid}")
    dialog.get_by_label("QoS").select_option("1")
    dialog.get_by_label("No Local").select_option("Yes")
    dialog.get_by_role("button", name="Confirm").click()
    page.get_by_role("cell", name="dash/auto/${clientid}", exact=True).wait_for()
    assert node.get("/mqtt/auto_subscribe") == [
        {"topic": "dash/auto/${clientid}", "qos": 1, "nl": 1, "rap": 0, "rh": 0}]
    cid = uid("auto")
    c = client(node, cid)
    wait_until(lambda: any(s["topic"] == f"dash/auto/{cid}" and s["qos"] == 1
                           for s in node.get(f"/clients/{cid}/subscriptions")))
    client(node).publish(f"dash/auto/{cid}", "for you", qos=1)
    assert c.get().payload == b"for you"
    c.close()
    page.get_by_role("button", name="Edit dash/auto/${clientid}").click()
    page.get_by_role("dialog").get_by_label("QoS").select_option("2")
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    wait_until(lambda: node.get("/mqtt/auto_subscribe")[0]["qos"] == 2)
    page.get_by_role("button", name="Delete dash/auto/${clientid}").click()
    confirm(page)
    page.get_by_role("cell", name="dash/auto/${clientid}", exact=True).wait_for(state="detached")
    assert node.get("/mqtt/auto_subscribe") == []


def test_topic_metrics_count_published_messages_and_reset(page, api):
    topic = f"dash/tm/{uid()}"
    login(page, api, to="#/login?to=/topic-metrics")
    page.get_by_label("Topic", exact=True).fill(topic)
    page.get_by_role("button", name="Add Topic").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=topic, exact=True))
    row.wait_for()
    c = client(api)
    for i in range(3):
        c.publish(topic, str(i), qos=1)
    c.close()
    # the page refreshes itself: the incoming count (the 2nd column) reaches 3
    expect(row.get_by_role("cell").nth(1)).to_have_text("3", timeout=15000)
    row.get_by_role("button", name=f"View {topic}").click()  # every metric, by QoS too
    expect(page.get_by_role("dialog", name=topic).locator("dt", has_text="messages.qos1.in.count")
           .locator("xpath=following-sibling::dd[1]")).to_have_text("3")
    page.get_by_role("dialog").get_by_role("button", name="Close").click()
    row.get_by_role("button", name=f"Reset {topic}").click()
    confirm(page)
    wait_until(lambda: api.get(f"/mqtt/topic_metrics/{topic.replace('/', '%2F')}")
               ["metrics"]["messages.in.count"] == 0)
    expect(row.get_by_role("cell").nth(1)).to_have_text("0")
    row.get_by_role("button", name=f"Delete {topic}").click()
    confirm(page)
    row.wait_for(state="detached")
    assert topic not in [t["topic"] for t in api.get("/mqtt/topic_metrics")]
    # the API's refusal is shown with its code and message
    page.get_by_label("Topic", exact=True).fill("dash/+/wild")
    page.get_by_role("button", name="Add Topic").click()
    expect(page.locator(".notice.error")).to_have_text("BAD_TOPIC: Wildcard topic is not supported")


def test_slow_subscriptions_enabled_ranked_and_cleared(page, make_broker):
    node = make_broker({"sys_topics": {"sys_msg_interval": "disabled"}})
    login(page, node, to="#/login?to=/slow-sub")
    expect(page.get_by_text("Slow subscriptions statistics are disabled")).to_be_visible()
    page.get_by_role("link", name="Settings", exact=True).click()
    page.wait_for_url(re.compile(r"#/slow-sub/config$"))
    page.get_by_label("enable", exact=True).check()
    page.get_by_label("threshold", exact=True).fill("150ms")
    page.get_by_role("button", name="Save").click()
    wait_until(lambda: node.get("/slow_subscriptions/settings")["enable"] is True)
    # a subscriber that acknowledges 0.4 s late
    topic = f"dash/slow/{uid()}"
    sub = node.mqtt(manual_ack=True)
    sub.subscribe(topic, 1)
    client(node).publish(topic, "x", qos=1)
    msg = sub.get()
    time.sleep(0.4)
    sub.ack(msg)
    page.get_by_role("link", name="Slow Subscriptions", exact=True).last.click()
    page.wait_for_url(re.compile(r"#/slow-sub$"))
    page.get_by_role("cell", name=sub.client_id).wait_for(timeout=15000)
    page.get_by_role("button", name="Clear Data").click()
    confirm(page)
    page.get_by_role("cell", name=sub.client_id).wait_for(state="detached")
    assert node.get("/slow_subscriptions")["data"] == []
    sub.close()


def test_backup_exported_downloaded_restored_deleted_and_uploaded(page, make_broker, tmp_path):
    node = make_broker()
    node.ok("PUT", "/configs/global_zone", json={"mqtt": {"max_topic_levels": 42}})
    login(page, node, to="#/login?to=/backup")
    page.get_by_role("button", name="Create").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("dashboard_users").uncheck()
    dialog.get_by_role("button", name="Create").click()
    dialog.wait_for(state="detached")
    wait_until(lambda: len(node.get("/data/files")["data"]) == 1)
    name = node.get("/data/files")["data"][0]["filename"]
    row = page.get_by_role("row").filter(has_text=name)
    row.wait_for()
    with page.expect_download() as got:
        row.get_by_role("button", name=f"Download {name}").click()
    saved = tmp_path / name
    got.value.save_as(saved)
    with tarfile.open(saved) as tar:
        names = tar.getnames()
    assert any(n.endswith("cluster.hocon") for n in names)
    assert not any("dashboard" in n.lower() for n in names if "tables" in n)  # left out
    # restored after a change: the backup's value comes back
    node.ok("PUT", "/configs/global_zone", json={"mqtt": {"max_topic_levels": 77}})
    row.get_by_role("button", name=f"Restore {name}").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Restore").click()
    wait_until(lambda: node.get("/configs/global_zone")["mqtt"]["max_topic_levels"] == 42)
    row.get_by_role("button", name=f"Delete {name}").click()
    confirm(page)
    row.wait_for(state="detached")
    assert node.get("/data/files")["data"] == []
    # the downloaded file uploaded again
    page.get_by_label("Upload").set_input_files(str(saved))
    row.wait_for()
    assert [f["filename"] for f in node.get("/data/files")["data"]] == [name]


def test_durable_sessions_tab_saves_the_root(page, make_broker):
    node = make_broker()
    login(page, node, to="#/login?to=/mqtt/general")
    page.get_by_role("link", name="Durable Sessions").click()
    page.wait_for_url(re.compile(r"#/mqtt/session-persistence$"))
    expect(page.get_by_label("enable", exact=True)).to_be_checked()
    page.get_by_label("batch_size", exact=True).fill("250")
    page.get_by_role("button", name="Save").click()
    wait_until(lambda: node.get("/configs/global_zone")["durable_sessions"]["batch_size"] == 250)


@pytest.mark.parametrize("route", ["/delayed-pub", "/delayed-pub-configuration", "/topic-rewrite",
                                   "/auto-sub", "/topic-metrics", "/slow-sub", "/slow-sub/config",
                                   "/backup", "/mqtt/session-persistence"])
def test_every_control_has_an_accessible_name(page, api, route):
    login(page, api, to=f"#/login?to={route}")
    page.wait_for_url(re.compile("#" + re.escape(route) + "$"))
    page.wait_for_timeout(300)
    assert page.evaluate(ACCESSIBLE_NAME_CHECK) == []
    assert page.get_by_role("heading", level=1).count() == 1


# -- the keyboard alone ------------------------------------------------------------------------

FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el.matches('.hidden-file') ? el.parentElement : el);
  return {text: (el.getAttribute('aria-label') || el.innerText || el.value || '').trim(),
          tag: el.tagName, inDialog: !!el.closest('[role=dialog], [role=alertdialog]'),
          visible: el.matches(':focus-visible') && style.outlineStyle !== 'none'
                   && parseFloat(style.outlineWidth) > 0};
}"""


def tab_to(page, text, limit=80, shift=False):
    """Press Tab until the focused control is named `text`; each stop's focus must show."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if shift else "Tab")
        focused = page.evaluate(FOCUSED)
        assert focused is None or focused["visible"], f"focus not visible on {focused}"
        if focused and focused["text"] == text:
            return focused
    raise AssertionError(f"{text!r} not reached with the keyboard")


def test_keyboard_only_login_and_api_key_lifecycle(page, api):
    name = uid("kbd")
    page.goto(f"{api.base}/#/login?to=/dashboard/overview")
    # the username field has the focus on arrival
    page.keyboard.type("admin")
    page.keyboard.press("Tab")
    page.keyboard.type("public")
    page.keyboard.press("Enter")
    expect(page.get_by_label("New password")).to_be_focused()
    tab_to(page, "Skip")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"#/dashboard/overview$"))
    # through the menu to API Key
    tab_to(page, "API Key")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"#/api-key$"))
    tab_to(page, "Create")
    page.keyboard.press("Space")
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Name")).to_be_focused()
    # Tab stays inside the open dialog
    for _ in range(8):
        page.keyboard.press("Tab")
        assert page.evaluate(FOCUSED)["inDialog"]
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(FOCUSED)["inDialog"]
    # Escape closes it and gives the focus back to Create
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    expect(page.get_by_role("button", name="Create")).to_be_focused()
    page.keyboard.press("Enter")
    expect(dialog.get_by_label("Name")).to_be_focused()
    page.keyboard.type(name)
    page.keyboard.press("Enter")  # submits the form
    done = page.get_by_role("dialog", name="Created Successfully")
    expect(done).to_be_visible()
    assert page.evaluate(FOCUSED)["inDialog"]
    key = done.get_by_label("API Key").input_value()
    secret = done.get_by_label("Secret Key").input_value()
    assert httpx.get(api.api_url + "/nodes", auth=(key, secret)).status_code == 200
    page.keyboard.press("Escape")
    done.wait_for(state="detached")
    expect(page.get_by_role("button", name="Create")).to_be_focused()
    # the switch: Space turns the key off
    tab_to(page, f"Enable {name}")
    page.keyboard.press("Space")
    wait_until(lambda: httpx.get(api.api_url + "/nodes", auth=(key, secret)).status_code == 401)
    # delete: the confirm box takes the focus, Enter confirms
    row = page.get_by_role("row").filter(has_text=name)
    focused = tab_to(page, "Delete")
    assert row.get_by_role("button", name="Delete").evaluate("el => el === document.activeElement")
    assert focused["visible"]
    page.keyboard.press("Enter")
    expect(page.get_by_role("alertdialog").get_by_role("button", name="Confirm")).to_be_focused()
    page.keyboard.press("Enter")
    row.wait_for(state="detached")
    # the button is gone with its row: focus lands on the page's heading, not lost
    wait_until(lambda: (page.evaluate(FOCUSED) or {}).get("tag") == "H1")
