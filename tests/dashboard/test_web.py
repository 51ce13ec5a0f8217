"""The web dashboard, driven in Debian's Chromium by Playwright against a started broker:
EMQX's hash routes, login (and the default-password nudge), expiry back to the login page,
and each built page doing its job through the real API."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from support.browser import ACCESSIBLE_NAME_CHECK, login, needs_browser
from support.mqttclient import client, rc_value, uid
from support.waiting import wait_until

WEB = Path(__file__).resolve().parents[2] / "emqpy" / "dashboard" / "web"


# -- served files, no browser -------------------------------------------------------------------

def test_page_and_files_are_served(api):
    r = httpx.get(api.base + "/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert 'type="module"' in r.text
    js = httpx.get(api.base + "/static/js/main.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize("path", ["/static/../web.py", "/static/%2e%2e/web.py",
                                  "/static/js/nothing.js", "/static/vendor/"])
def test_only_dashboard_files_are_served(api, path):
    r = httpx.get(api.base + path)
    assert r.status_code == 404


def test_vendored_files_match_their_recorded_checksums():
    """web/vendor/VENDOR.md records each vendored file's sha256 (as npm published it): a file
    edited by hand, or replaced without updating the record, fails here."""
    table = (WEB / "vendor" / "VENDOR.md").read_text()
    recorded = dict((name, digest) for digest, name in
                    re.findall(r"\|\s*`([0-9a-f]{64})`\s*\|\s*`([^`]+)`", table))
    on_disk = {p.name for p in (WEB / "vendor").iterdir() if p.name != "VENDOR.md"}
    assert set(recorded) == on_disk
    for name, digest in recorded.items():
        assert hashlib.sha256((WEB / "vendor" / name).read_bytes()).hexdigest() == digest, name


def test_nothing_outside_the_broker_is_referenced():
    """No CDN, web font or telemetry: every URL in the page's own files is relative."""
    for path in WEB.rglob("*"):
        if path.is_file() and "vendor" not in path.parts:
            text = path.read_text()
            assert not re.search(r"""(src|href|import|fetch)\W+['"(]?https?://""", text), path


# -- in the browser --------------------------------------------------------------------------

@needs_browser
def test_unknown_route_and_guard_send_to_login_with_target(page, api):
    page.goto(f"{api.base}/#/clients")
    page.wait_for_url(re.compile(r"#/login\?to=/clients$"))
    login(page, api, to="#/login?to=/clients")
    page.wait_for_url(re.compile(r"#/clients$"))
    page.goto(f"{api.base}/#/no/such/page")
    expect(page.get_by_role("heading", name="Not Found")).to_be_visible()


@needs_browser
def test_wrong_password_shows_the_error_and_stays(page, api):
    page.goto(f"{api.base}/#/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Login").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "Incorrect username or password" in alert.inner_text()
    assert "#/login" in page.url


@needs_browser
def test_default_password_asks_for_a_change(page, api):
    page.goto(f"{api.base}/#/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("public")
    page.get_by_role("button", name="Login").click()
    expect(page.get_by_label("New password")).to_be_visible()
    expect(page.get_by_label("Confirm password")).to_be_visible()
    page.get_by_role("button", name="Skip").click()
    page.wait_for_url(re.compile(r"#/dashboard/overview$"))


@needs_browser
def test_expired_token_returns_to_login_with_the_reason(page, api):
    login(page, api)
    page.wait_for_url(re.compile(r"#/dashboard/overview$"))
    session = page.evaluate("JSON.parse(localStorage.getItem('emqpy.session'))")
    # the token stops being valid (as at expiry): the server says so on the next poll
    r = httpx.post(api.api_url + "/logout", headers={"Authorization": f"Bearer {session['token']}"})
    assert r.status_code == 204
    page.wait_for_url(re.compile(r"#/login\?.*reason="), timeout=10000)
    assert "expired" in page.get_by_role("alert").first.inner_text()


@needs_browser
def test_logout_asks_then_ends_the_session(page, api):
    login(page, api)
    page.get_by_label("User menu").click()
    page.get_by_role("button", name="Logout").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Logout").click()
    page.wait_for_url(re.compile(r"#/login"))
    assert page.evaluate("localStorage.getItem('emqpy.session')") is None


@needs_browser
def test_overview_figures_match_the_api(page, api):
    """Each overview card shows what /monitor_current says, and the counts agree with /stats
    (the issue's check: the dashboard's numbers are the broker's)."""
    cid = uid("dash")
    c = client(api, cid)
    c.subscribe(f"dash/{cid}/#", qos=1)
    c.subscribe(f"dash/{cid}/exact", qos=0)
    c.publish(f"dash/{cid}/kept", b"r", qos=1, retain=True)
    stats_keys = {"connections": "connections.count", "live_connections":
                  "live_connections.count", "topics": "topics.count",
                  "subscriptions": "subscriptions.count", "retained_msg_count": "retained.count"}

    def card(key: str) -> str:
        return page.locator(f"[data-metric={key}] .card-value").inner_text().split()[0]

    def agree() -> bool:
        current = httpx.get(api.api_url + "/monitor_current", auth=("admin", "public")).json()
        stats = httpx.get(api.api_url + "/stats", auth=("admin", "public")).json()
        stats = stats[0] if isinstance(stats, list) else stats
        return all(card(k) == str(current[k]) and current[k] == stats[s]
                   for k, s in stats_keys.items())

    try:
        login(page, api)
        wait_until(lambda: card("subscriptions").isdigit() and int(card("subscriptions")) >= 2,
                   timeout=10)
        wait_until(agree, timeout=15, what="overview cards equal /monitor_current and /stats")
        assert int(card("live_connections")) >= 1 and int(card("retained_msg_count")) >= 1
        assert page.locator(".chart").count() == 3
        node = httpx.get(api.api_url + "/nodes", auth=("admin", "public")).json()[0]
        chip = page.locator(".node-chip").first
        assert node["node"] in chip.inner_text() and node["version"] in chip.inner_text()
        page.get_by_role("link", name="Nodes").click()
        expect(page.get_by_role("cell", name=api.broker.node_name)).to_be_visible()
    finally:
        c.publish(f"dash/{cid}/kept", b"", qos=1, retain=True)
        c.close()


@needs_browser
def test_clients_search_detail_and_kick(page, api):
    cid = uid("kickme")
    c = client(api, cid, username="dash-user")
    c.subscribe("dash/kick/topic", qos=1)
    try:
        login(page, api, to="#/login?to=/clients")
        page.get_by_label("Client ID").fill(cid)
        page.get_by_role("button", name="Search").click()
        page.get_by_role("link", name=cid).click()
        page.wait_for_url(re.compile(r"#/clients/detail/"))
        expect(page.get_by_role("cell", name="dash/kick/topic")).to_be_visible()
        expect(page.get_by_text("MQTT v3.1.1")).to_be_visible()
        page.get_by_role("button", name="Kick Out").click()
        dialog = page.get_by_role("alertdialog")
        assert "kick off the client" in dialog.inner_text()
        dialog.get_by_role("button", name="Confirm").click()
        page.wait_for_url(re.compile(r"#/clients$"))
        c.wait_disconnected()
        wait_until(lambda: httpx.get(f"{api.api_url}/clients/{cid}",
                                     auth=("admin", "public")).status_code == 404)
    finally:
        c.close()


@needs_browser
def test_retained_message_payload_and_delete(page, api):
    topic = f"dash/retained/{uid()}"
    c = client(api)
    c.publish(topic, "hello dashboard", qos=1, retain=True)
    c.close()
    login(page, api, to="#/login?to=/retained")
    page.get_by_label("Topic").fill(topic)
    page.get_by_role("button", name="Search").click()
    row = page.get_by_role("row").filter(has_text=topic)
    row.get_by_role("button", name="Show Payload").click()
    expect(page.get_by_role("dialog").get_by_text("hello dashboard")).to_be_visible()
    page.get_by_role("dialog").get_by_role("button", name="Close").click()
    row.get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Confirm").click()
    wait_until(lambda: httpx.get(f"{api.api_url}/mqtt/retainer/message/{topic}",
                                 auth=("admin", "public")).status_code == 404)


@needs_browser
def test_ban_created_in_the_dialog_refuses_the_client(page, api):
    who = uid("banned")
    login(page, api, to="#/login?to=/banned-clients")
    page.get_by_role("button", name="Create").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Banned Object").fill(who)
    dialog.get_by_label("Reason").fill("from the dashboard test")
    dialog.get_by_role("button", name="Create").click()
    page.get_by_role("cell", name=who).wait_for()
    c = client(api, who)
    assert c.connack_rc != 0
    c.close()
    page.get_by_role("row").filter(has_text=who).get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Confirm").click()
    page.get_by_role("cell", name=who).wait_for(state="detached")
    c = client(api, who)
    assert c.connack_rc == 0
    c.close()


@needs_browser
def test_api_key_secret_shown_once_and_it_works(page, api):
    name = uid("key")
    login(page, api, to="#/login?to=/api-key")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("dialog").get_by_label("Name").fill(name)
    page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    done = page.get_by_role("dialog", name="Created Successfully")
    key = done.get_by_label("API Key").input_value()
    secret = done.get_by_label("Secret Key").input_value()
    assert httpx.get(api.api_url + "/nodes", auth=(key, secret)).status_code == 200
    done.get_by_role("button", name="Close", exact=True).last.click()
    # disabled from its switch: the key stops working
    page.get_by_role("switch", name=f"Enable {name}").uncheck()
    wait_until(lambda: httpx.get(api.api_url + "/nodes", auth=(key, secret)).status_code == 401)
    page.get_by_role("row").filter(has_text=name).get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Confirm").click()
    page.get_by_role("cell", name=name, exact=True).wait_for(state="detached")


@needs_browser
def test_errors_show_the_api_code_and_message(page, api):
    login(page, api, to="#/login?to=/users")
    page.get_by_role("button", name="Create").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Username").fill("admin")  # exists: the API refuses
    dialog.get_by_label("Password").fill("whatever-123")
    dialog.get_by_role("button", name="Create").click()
    notice = page.locator(".notice.error")
    notice.wait_for()
    assert re.match(r"[A-Z_]+: ", notice.inner_text())


@needs_browser
@pytest.mark.parametrize("route", ["/dashboard/overview", "/dashboard/nodes", "/dashboard/metrics",
                                   "/clients", "/subscriptions/subscription",
                                   "/subscriptions/topics", "/retained", "/banned-clients",
                                   "/users", "/api-key", "/listener", "/websocket", "/mqtt/general",
                                   "/mqtt/session", "/mqtt/retainer", "/mqtt/system-topic",
                                   "/rule/rules", "/rule/rules/create", "/authentication",
                                   "/authentication/create", "/authorization",
                                   "/authorization/create", "/connector", "/connector/create",
                                   "/rule/actions", "/rule/actions/create", "/rule/source",
                                   "/alarm/current-alarm", "/alarm/history-alarm",
                                   "/flapping-detect", "/webhook", "/webhook/create",
                                   "/log-trace", "/log"])
def test_every_control_has_an_accessible_name(page, api, route):
    login(page, api, to=f"#/login?to={route}")
    page.wait_for_url(re.compile("#" + re.escape(route) + "$"))
    page.wait_for_timeout(300)
    assert page.evaluate(ACCESSIBLE_NAME_CHECK) == []


@needs_browser
def test_websocket_client_subscribes_and_publishes_with_mqtt_js(page, api):
    login(page, api, to="#/login?to=/websocket")
    page.get_by_label("Host").fill("127.0.0.1")
    page.get_by_label("Port").fill(str(api.bt.ws_port))
    cid = uid("browser")
    page.get_by_label("Client ID").fill(cid)
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Connected")).to_be_visible()
    wait_until(lambda: httpx.get(f"{api.api_url}/clients/{cid}",
                                 auth=("admin", "public")).status_code == 200)
    page.get_by_label("Subscription topic").fill("dash/ws/in/#")
    page.get_by_role("button", name="Subscribe", exact=True).click()
    page.get_by_role("cell", name="dash/ws/in/#").wait_for()
    # a paho client publishes to the browser, and receives from it
    other = client(api)
    other.subscribe("dash/ws/out", qos=1)
    other.publish("dash/ws/in/1", "from paho", qos=1)
    page.get_by_role("table", name="Received").get_by_role("cell", name="from paho").wait_for()
    page.get_by_label("Publish topic").fill("dash/ws/out")
    page.get_by_label("Payload", exact=True).fill("from the browser")
    page.get_by_role("button", name="Publish", exact=True).click()
    assert other.get().payload == b"from the browser"
    other.close()
    page.get_by_role("button", name="Disconnect").click()
    expect(page.get_by_role("status").filter(has_text="Disconnected")).to_be_visible()


@needs_browser
def test_listener_created_stopped_started_and_deleted(page, api):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = uid("dash").replace("-", "_")
    login(page, api, to="#/login?to=/listener")
    page.get_by_role("button", name="Add Listener").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill(name)
    dialog.get_by_label("Listen Address").fill(f"127.0.0.1:{port}")
    dialog.get_by_role("button", name="Save").click()
    row = page.get_by_role("row").filter(has_text=name)
    expect(row.get_by_text("Running")).to_be_visible()
    probe = type("P", (), {"host": "127.0.0.1", "port": port})()
    c = client(probe)
    assert c.connack_rc == 0
    c.close()
    row.get_by_role("button", name=f"Stop tcp:{name}", exact=True).click()
    page.get_by_role("alertdialog").get_by_role("button", name="Confirm").click()
    expect(row.get_by_text("Stopped")).to_be_visible()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    row.get_by_role("button", name=f"Start tcp:{name}", exact=True).click()
    expect(row.get_by_text("Running")).to_be_visible()
    row.get_by_role("button", name=f"Delete tcp:{name}").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Confirm").click()
    row.wait_for(state="detached")
    assert httpx.get(f"{api.api_url}/listeners/tcp:{name}",
                     auth=("admin", "public")).status_code == 404


@needs_browser
def test_mqtt_settings_change_takes_effect(page, api):
    before = httpx.get(api.api_url + "/configs/global_zone", auth=("admin", "public")).json()
    try:
        login(page, api, to="#/login?to=/mqtt/general")
        field = page.get_by_label("max_clientid_len", exact=True)
        field.fill("30")
        page.get_by_role("button", name="Save").click()
        wait_until(lambda: httpx.get(api.api_url + "/configs/global_zone", auth=("admin", "public"))
                   .json()["mqtt"]["max_clientid_len"] == 30)
        c = client(api, "x" * 40)
        assert c.connack_rc != 0  # client identifier not valid
        c.close()
        # the Session tab shows the session keys only
        page.get_by_role("link", name="Session", exact=True).click()
        expect(page.get_by_label("max_inflight", exact=True)).to_be_visible()
        assert page.get_by_label("max_clientid_len", exact=True).count() == 0
        # a list or object that is not JSON is refused in the page, before any request
        page.get_by_role("link", name="System Topic").click()
        page.get_by_label("sys_event_messages", exact=True).fill("{not json")
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".notice.error")).to_contain_text("sys_event_messages: not valid JSON")
    finally:
        httpx.put(api.api_url + "/configs/global_zone", auth=("admin", "public"),
                  json={"mqtt": {"max_clientid_len": before["mqtt"]["max_clientid_len"]}})


@needs_browser
def test_rule_tested_created_run_and_deleted(page, api):
    rule_id = uid("dashrule")
    login(page, api, to="#/login?to=/rule/rules")
    page.get_by_role("link", name="Create").click()
    page.get_by_label("Rule ID").fill(rule_id)
    page.get_by_label("SQL", exact=True).fill('SELECT payload.msg as m FROM "dash/rule/in"')
    page.get_by_role("button", name="Add Action").click()
    page.get_by_label("Topic", exact=True).first.fill("dash/rule/out")
    page.get_by_label("Payload", exact=True).first.fill("got ${m}")
    # Test SQL against a sample message before saving
    test = page.get_by_role("form", name="Test SQL")
    test.get_by_label("Topic").fill("dash/rule/in")
    test.get_by_label("Payload").fill('{"msg": "sample"}')
    test.get_by_role("button", name="Run Test").click()
    expect(page.get_by_label("Output", exact=True)).to_contain_text('"m": "sample"')
    page.get_by_role("button", name="Create", exact=True).click()
    page.wait_for_url(re.compile(r"#/rule/rules$"))
    page.get_by_role("link", name=rule_id).wait_for()
    sub = client(api)
    sub.subscribe("dash/rule/out", qos=1)
    pub = client(api)
    pub.publish("dash/rule/in", '{"msg": "hi"}', qos=1)
    assert sub.get().payload == b"got hi"
    page.get_by_role("link", name=rule_id).click()
    expect(page.locator("[data-metric=matched]")).to_have_text("1", timeout=10000)
    page.get_by_role("link", name="Cancel").click()
    page.get_by_role("switch", name=f"Enable {rule_id}").uncheck()
    wait_until(lambda: httpx.get(f"{api.api_url}/rules/{rule_id}",
                                 auth=("admin", "public")).json()["enable"] is False)
    pub.publish("dash/rule/in", '{"msg": "off"}', qos=1)
    sub.expect_none()
    page.get_by_role("button", name=f"Delete {rule_id}").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Confirm").click()
    page.get_by_role("link", name=rule_id).wait_for(state="detached")
    sub.close()
    pub.close()


@needs_browser
def test_authentication_wizard_users_and_import(page, make_broker, tmp_path):
    node = make_broker()
    login(page, node, to="#/login?to=/authentication")
    page.get_by_role("link", name="Create").click()
    page.get_by_label("Password-Based").check()
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Built-in Database").check()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"#/authentication$"))
    aid = "password_based:built_in_database"
    page.get_by_role("link", name=aid, exact=True).wait_for()
    page.get_by_role("link", name=f"Users {aid}").click()
    page.get_by_role("button", name="Add").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Username").fill("dash-user")
    dialog.get_by_label("Password").fill("dash-pw")
    dialog.get_by_role("button", name="Save").click()
    page.get_by_role("cell", name="dash-user", exact=True).wait_for()
    from support.mqttclient import MqttClient
    good = MqttClient(node.host, node.port, uid(), version=4).connect(
        username="dash-user", password="dash-pw", expect_rc=None)
    assert good.connack_rc == 0
    good.close()
    bad = MqttClient(node.host, node.port, uid(), version=4).connect(
        username="dash-user", password="nope", expect_rc=None)
    assert bad.connack_rc != 0
    bad.close()
    csv = tmp_path / "users.csv"
    csv.write_text("user_id,password,is_superuser\nimported-1,secret-1,false\n")
    page.get_by_label("Import").set_input_files(str(csv))
    page.get_by_role("cell", name="imported-1", exact=True).wait_for()
    imported = MqttClient(node.host, node.port, uid(), version=4).connect(
        username="imported-1", password="secret-1", expect_rc=None)
    assert imported.connack_rc == 0
    imported.close()
    # disabled from the list: the chain is empty of enabled authenticators again
    page.get_by_role("link", name="Authentication", exact=True).click()
    page.get_by_role("switch", name=f"Enable {aid}").uncheck()
    wait_until(lambda: node.api.get(f"/authentication/{aid}").json()["enable"] is False)
    page.get_by_role("button", name=f"Delete {aid}").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Confirm").click()
    page.get_by_role("link", name=aid, exact=True).wait_for(state="detached")


@needs_browser
def test_authorization_source_and_builtin_rules(page, make_broker):
    node = make_broker()
    cid = uid("authz")
    login(page, node, to="#/login?to=/authorization")
    page.get_by_role("link", name="Create").click()
    page.get_by_label("Built-in Database").check()
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"#/authorization$"))
    page.get_by_role("link", name="Built-in Database").click()
    rule_form = page.get_by_role("form", name="Add rule")
    rule_form.get_by_label("Client ID").fill(cid)
    rule_form.get_by_label("Permission").select_option("deny")
    rule_form.get_by_label("Action").select_option("publish")
    rule_form.get_by_label("Topic").fill("dash/deny/#")
    rule_form.get_by_role("button", name="Add rule").click()
    page.get_by_role("cell", name="dash/deny/#", exact=True).wait_for()
    c = client(node, cid, v5=True)
    assert rc_value(c.publish("dash/deny/1", "x", qos=1)) == 0x87  # not authorized
    assert rc_value(c.publish("dash/allowed", "x", qos=1)) < 0x80  # 0x10: no subscribers
    page.get_by_role("button", name=f"Delete {cid} dash/deny/#").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Confirm").click()
    page.get_by_role("cell", name="dash/deny/#", exact=True).wait_for(state="detached")
    wait_until(lambda: rc_value(c.publish("dash/deny/1", "x", qos=1)) < 0x80)
    c.close()
    page.get_by_role("link", name="Authorization", exact=True).click()
    page.get_by_role("button", name="Clear Cache").click()
    expect(page.get_by_role("status").get_by_text("Authorization cache cleared")).to_be_visible()


@needs_browser
def test_connector_action_and_rule_deliver_to_a_real_http_server(page, api, sink):
    name = uid("dashhook").replace("-", "_")
    login(page, api, to="#/login?to=/connector/create")
    page.get_by_label("Type").select_option("http")
    page.get_by_label("Name").fill(name)
    page.get_by_label("url", exact=True).fill(sink.url())
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"#/connector$"))
    row = page.get_by_role("row").filter(has_text=name)
    expect(row.get_by_text("connected")).to_be_visible(timeout=15000)
    page.goto(f"{api.base}/#/rule/actions/create")
    page.get_by_label("Type").select_option("http")
    page.get_by_label("Name").fill(name)
    page.get_by_label("parameters", exact=True).fill(
        '{"method": "post", "path": "/hook", "headers": {}, "body": "${payload}"}')
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"#/rule/actions$"))
    page.get_by_role("link", name=name).wait_for()
    rule = httpx.post(api.api_url + "/rules", auth=("admin", "public"), json={
        "sql": 'SELECT * FROM "dash/hook"', "actions": [f"http:{name}"]})
    assert rule.status_code == 201, rule.text
    c = client(api)
    c.publish("dash/hook", "to the web", qos=1)
    c.close()
    wait_until(lambda: any(r["body"] == "to the web" for r in sink.requests()))
    page.get_by_role("link", name=name).click()
    expect(page.locator("[data-metric=success]")).to_have_text("1", timeout=10000)
    httpx.delete(f"{api.api_url}/rules/{rule.json()['id']}", auth=("admin", "public"))
    page.goto(f"{api.base}/#/rule/actions")
    page.get_by_role("button", name=f"Delete http:{name}").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Confirm").click()
    page.get_by_role("link", name=name).wait_for(state="detached")


@needs_browser
def test_alarms_current_history_and_clear(page, api):
    name = uid("dash_alarm").replace("-", "_")
    api.call(lambda: api.broker.alarms.activate(name, {"from": "test"}, "raised by the test"))
    login(page, api, to="#/login?to=/alarm")
    page.wait_for_url(re.compile(r"#/alarm/current-alarm$"))
    page.get_by_role("cell", name=name).wait_for()
    api.call(lambda: api.broker.alarms.deactivate(name))
    page.get_by_role("link", name="History Alarms").click()
    page.get_by_role("cell", name=name).wait_for()
    page.get_by_role("button", name="Clear History Alarms").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Confirm").click()
    page.get_by_role("cell", name=name).wait_for(state="detached")


@needs_browser
def test_flapping_detect_settings_saved(page, make_broker):
    node = make_broker()
    login(page, node, to="#/login?to=/flapping-detect")
    page.get_by_label("enable", exact=True).check()
    page.get_by_label("max_count", exact=True).fill("3")
    page.get_by_role("button", name="Save").click()

    def saved():
        fd = node.api.get("/configs/global_zone").json()["flapping_detect"]
        return fd["enable"] is True and fd["max_count"] == 3
    wait_until(saved)


@needs_browser
def test_webhook_is_a_connector_an_action_and_a_rule(page, api, sink):
    name = uid("wh").replace("-", "_")
    login(page, api, to="#/login?to=/webhook/create")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Trigger").fill("dash/wh/#")
    page.get_by_label("URL").fill(sink.url("/wh"))
    page.get_by_label("Body").fill("${topic}=${payload}")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"#/webhook$"))
    page.get_by_role("link", name=name).wait_for()
    ident = name + "_WH_D"
    for path in (f"/connectors/http:{ident}", f"/actions/http:{ident}", f"/rules/{ident}"):
        assert httpx.get(api.api_url + path, auth=("admin", "public")).status_code == 200, path
    c = client(api)
    c.publish("dash/wh/1", "ring", qos=1)
    c.close()
    wait_until(lambda: any(r["body"] == "dash/wh/1=ring" and r["path"] == "/wh"
                           for r in sink.requests()))
    page.get_by_role("button", name=f"Delete {name}").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Confirm").click()
    page.get_by_role("link", name=name).wait_for(state="detached")
    for path in (f"/connectors/http:{ident}", f"/actions/http:{ident}", f"/rules/{ident}"):
        assert httpx.get(api.api_url + path, auth=("admin", "public")).status_code == 404, path


@needs_browser
def test_log_trace_of_a_client_read_and_downloaded(page, api, tmp_path):
    name = "dash" + uid("trace").replace("-", "_")
    cid = uid("traced")
    login(page, api, to="#/login?to=/log-trace")
    page.get_by_role("button", name="Create").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill(name)
    dialog.get_by_label("Condition").fill(cid)
    dialog.get_by_role("button", name="Create").click()
    row = page.get_by_role("row").filter(has_text=name)
    expect(row.get_by_text("running")).to_be_visible(timeout=10000)
    c = client(api, cid)
    c.publish("dash/traced", "traced payload", qos=1)
    c.close()
    page.get_by_role("link", name=name).click()
    expect(page.get_by_label("Trace log")).to_contain_text("traced payload", timeout=15000)
    with page.expect_download() as got:
        page.get_by_role("button", name="Download").click()
    path = tmp_path / "trace.zip"
    got.value.save_as(path)
    import zipfile
    with zipfile.ZipFile(path) as z:
        assert any(b"traced payload" in z.read(n) for n in z.namelist())
    page.goto(f"{api.base}/#/log-trace")
    row.get_by_role("button", name=f"Stop {name}").click()
    expect(row.get_by_text("stopped")).to_be_visible()
    row.get_by_role("button", name=f"Delete {name}").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Confirm").click()
    row.wait_for(state="detached")


@needs_browser
def test_logging_settings_saved(page, make_broker):
    node = make_broker()
    login(page, node, to="#/login?to=/log")
    form = page.get_by_role("form", name="Console Handler")
    form.get_by_label("level", exact=True).fill("debug")
    form.get_by_role("button", name="Save").click()
    wait_until(lambda: node.api.get("/configs/log").json()["console"]["level"] == "debug")
