"""Walks the web console in headless Chromium (selenium + chromedriver):
logs in, visits every page, saves a screenshot of each, asserts no page
logs a browser console error, marks an alarm as a false positive, starts
a mitigation on it, checks the ML model status cells against
GetBehaviorModelTrainingSummaries, runs an audit, suppresses one finding
and mitigates another from the audit page, checks the profile editor
refuses bad behaviours, and watches the live stream show a new alarm.

Arguments: ADMIN_ENDPOINT CA_FILE TLS_PORT PASSWORD WORKDIR SCREENSHOT_DIR.
The server runs with `datapoint_seconds = 1` and a short ML model day, so
the ML behaviour's model collects data (PENDING_BUILD, a growing
percentage) while the browser works. Prints `ok console` at the end.
"""

import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "defender"))

from fleet import Fleet, behavior, count, wait_for  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

endpoint, ca_file, tls_port, password, workdir, shots = sys.argv[1:7]
os.makedirs(shots, exist_ok=True)
T0 = time.time()


def step(msg):
    print(f"[{time.time() - T0:5.1f}s] {msg}", flush=True)


# ------------------------------------------------------------ fleet set-up
fleet = Fleet(endpoint, ca_file, tls_port, workdir, "unused", workdir)
fleet.profile(
    "chatty",
    "console-fleet",
    [
        behavior("too-many-sent", "aws:num-messages-sent", count("less-than", 3, duration=300)),
        behavior("learned-sent", "aws:num-messages-sent", {"mlDetectionConfig": {"confidenceLevel": "HIGH"}}),
    ],
    alerts=False,
)
ROLE = "arn:aws:iam::123456789012:role/unused"
noisy = fleet.device("noisy-1", groups=["console-fleet"]).connect()
later = fleet.device("noisy-2", groups=["console-fleet"])
# Logging off: the audit's LOGGING_DISABLED_CHECK finding, mitigated later.
fleet.iot.set_v2_logging_options(roleArn=ROLE, defaultLogLevel="ERROR", disableAllLogs=True)
fleet.iot.update_account_audit_configuration(
    auditCheckConfigurations={
        "LOGGING_DISABLED_CHECK": {"enabled": True},
        # The fleet's allow-all policy is a CRITICAL finding to suppress.
        "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": {"enabled": True},
    }
)
# Keeps noisy-1 above the limit every period, so its alarm stays active
# while the browser works on it.
chatter_stop = threading.Event()


def chatter():
    while not chatter_stop.is_set():
        noisy.client.publish("t/noisy", b"x" * 10, qos=0)
        chatter_stop.wait(0.05)


threading.Thread(target=chatter, daemon=True).start()
active = wait_for("noisy-1's alarm", lambda: fleet.active("noisy-1"), limit=10)
violation_id = active[0]["violationId"]
step(f"alarm {violation_id} is active")

# ------------------------------------------------------------ the browser
opts = webdriver.ChromeOptions()
for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,900",
          "--disable-gpu", "--no-first-run", "--disable-extensions"):
    opts.add_argument(a)
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
driver = webdriver.Chrome(options=opts, service=service)
driver.set_page_load_timeout(15)
base = endpoint.rstrip("/")


def submit(button):
    """Clicks a submit button and waits for the next page to replace this
    one (a click returns before the navigation it starts)."""
    old = driver.find_element(By.TAG_NAME, "html")
    button.click()

    def replaced(_):
        # Chromium reports a node of the old document as stale or, mid
        # navigation, as "not in the document": both mean it was replaced.
        try:
            old.is_enabled()
            return False
        except WebDriverException:
            return True

    WebDriverWait(driver, 10).until(replaced)


def console_errors(allowed=()):
    bad = []
    for e in driver.get_log("browser"):
        if e["level"] in ("SEVERE", "ERROR") and not any(a in e["message"] for a in allowed):
            bad.append(e["message"])
    return bad


def visit(path, name, expect_h1=None, allowed=()):
    driver.get(base + path)
    check(name, expect_h1, allowed)


def check(name, expect_h1=None, allowed=()):
    h1 = driver.find_element(By.TAG_NAME, "h1").text
    if expect_h1 is not None:
        assert expect_h1 in h1, f"{name}: heading {h1!r}, expected {expect_h1!r}"
    driver.save_screenshot(os.path.join(shots, f"{name}.png"))
    errors = console_errors(allowed)
    assert not errors, f"{name}: browser console errors: {errors}"
    step(f"page {name}: {h1!r}")


try:
    # Not logged in: every page leads to the login.
    driver.get(base + "/console/alarms")
    assert "/console/login" in driver.current_url, driver.current_url
    check("00-login", "wardmq")
    driver.find_element(By.NAME, "user").send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys("wrong")
    submit(driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
    assert "Wrong user or password" in driver.page_source, driver.page_source[:2000]
    # The refused login answers 401, which Chromium logs as a failed load.
    console_errors(allowed=("401",))
    driver.find_element(By.NAME, "user").send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys(password)
    submit(driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
    assert driver.current_url.endswith("/console/alarms"), driver.current_url
    check("01-alarms-after-login", "Alarms")

    visit("/console/", "02-overview", "Fleet overview")
    assert driver.find_element(By.ID, "connected").text.strip() != "0", "overview shows no connected client"
    visit("/console/devices", "03-devices", "Devices")
    driver.find_element(By.NAME, "q").send_keys("noisy-1")
    submit(driver.find_element(By.CSS_SELECTOR, "form.filters button"))
    assert "noisy-1" in driver.page_source and "noisy-2" not in driver.page_source.split("<tbody>")[1]
    check("04-devices-search", "Devices")
    visit("/console/devices/noisy-1", "05-device", "Device noisy-1")
    charts = driver.find_elements(By.CSS_SELECTOR, "figure.chart svg")
    assert charts, "device page has no metric chart"
    assert driver.find_elements(By.CSS_SELECTOR, "figure.chart rect.alarm"), "no alarm marked on the charts"
    assert "allow-all" in driver.page_source, "effective policy missing"

    # Mark the alarm a false positive.
    visit("/console/alarms", "06-alarms", "Alarms")
    form = driver.find_element(
        By.XPATH, f"//table[contains(@class,'alarms')]//form[input[@name='violation_id' and @value='{violation_id}']]"
    )
    Select(form.find_element(By.NAME, "state")).select_by_value("FALSE_POSITIVE")
    form.find_element(By.NAME, "note").send_keys("load test <script>alert(1)</script>")
    submit(form.find_element(By.TAG_NAME, "button"))
    assert "Marked FALSE_POSITIVE" in driver.page_source, driver.page_source[:2000]
    check("07-alarm-marked", "Alarms")
    got = fleet.iot.list_active_violations(thingName="noisy-1")["activeViolations"][0]
    assert got["verificationState"] == "FALSE_POSITIVE", got
    assert got["verificationStateDescription"] == "load test <script>alert(1)</script>", got
    # The note is shown as text, not markup.
    assert "&lt;script&gt;" in driver.page_source or "<script>alert" not in driver.page_source
    driver.get(base + "/console/alarms?state=FALSE_POSITIVE&thing=noisy-1")
    assert violation_id in driver.page_source
    check("08-alarms-filtered", "Alarms")

    # The ML behaviour's model cell says what the API says. The model keeps
    # collecting while the page loads, so its percentage lies between the
    # API's readings just before and just after.
    def model():
        rows = fleet.iot.get_behavior_model_training_summaries(securityProfileName="chatty")["summaries"]
        assert [r["behaviorName"] for r in rows] == ["learned-sent"], rows
        return rows[0]

    def check_model_cell(cell_xpath, page, name, h1):
        before = model()
        visit(page, name, h1)
        after = model()
        cell = driver.find_element(By.XPATH, cell_xpath).text
        m = re.search(r"(PENDING_BUILD|ACTIVE|EXPIRED) ([0-9.]+)% collected", cell)
        assert m, f"{name}: model cell {cell!r}"
        assert m.group(1) in (before["modelStatus"], after["modelStatus"]), (cell, before, after)
        pct = float(m.group(2))
        lo, hi = before["datapointsCollectionPercentage"], after["datapointsCollectionPercentage"]
        assert lo - 0.05 <= pct <= hi + 0.05, f"{name}: {pct} % not within the API's {lo}..{hi}"
        step(f"{name}: model cell {cell!r} (API {lo}..{hi})")

    wait_for("the model to collect data", lambda: model()["datapointsCollectionPercentage"] > 0, limit=15)
    check_model_cell("//tr[td/a[text()='chatty']]/td[contains(@class,'models')]",
                     "/console/profiles", "09-profiles", "Security profiles")
    check_model_cell("//tr[td[1][text()='learned-sent']]/td[contains(@class,'models')]",
                     "/console/profiles/chatty", "10-profile", "Security profile chatty")
    rule_cell = driver.find_element(By.XPATH, "//tr[td[1][text()='too-many-sent']]/td[contains(@class,'models')]").text
    assert rule_cell == "—", f"a rule behaviour has no model: {rule_cell!r}"
    area = driver.find_element(By.NAME, "behaviors")
    area.clear()
    area.send_keys('[{"name": "x", "metric": "aws:no-such-metric", "criteria": {"comparisonOperator": "less-than", "value": {"count": 1}}}]')
    submit(driver.find_element(By.CSS_SELECTOR, "form.edit button"))
    assert "no-such-metric" in driver.find_element(By.CSS_SELECTOR, "p.flash.error").text
    check("11-profile-refused", "Security profile chatty", allowed=("400",))
    assert fleet.iot.describe_security_profile(securityProfileName="chatty")["behaviors"][0]["name"] == "too-many-sent"

    visit("/console/audit", "12-audit", "Audit")
    submit(driver.find_element(By.XPATH, "//form[@action='/console/audit/run']//button"))
    assert "started" in driver.find_element(By.CSS_SELECTOR, "p.flash.ok").text
    wait_for("the audit to finish", lambda: fleet.iot.list_audit_tasks(
        startTime=T0 - 60, endTime=time.time() + 60)["tasks"][0]["taskStatus"] != "IN_PROGRESS", limit=15)
    driver.refresh()
    assert "CRITICAL" in driver.page_source and "IOT_POLICY_OVERLY_PERMISSIVE_CHECK" in driver.page_source
    check("13-audit-run", "Audit")
    submit(driver.find_element(By.XPATH, "//form[@action='/console/audit/suppress']//button"))
    assert "Suppressed." in driver.find_element(By.CSS_SELECTOR, "p.flash").text, driver.find_element(By.CSS_SELECTOR, "p.flash").text
    sup = fleet.iot.list_audit_suppressions()["suppressions"]
    assert len(sup) == 1 and sup[0]["checkName"] == "IOT_POLICY_OVERLY_PERMISSIVE_CHECK", sup
    check("13b-audit-suppressed", "Audit")

    # Mitigate the LOGGING_DISABLED_CHECK finding from the audit page.
    fleet.iot.create_mitigation_action(
        actionName="console-logging",
        roleArn=ROLE,
        actionParams={"enableIoTLoggingParams": {"roleArnForLogging": ROLE, "logLevel": "WARN"}},
    )
    driver.refresh()
    mitigate = driver.find_element(By.ID, "mitigate")
    # Nothing ticked: refused with a message, no task.
    submit(mitigate.find_element(By.TAG_NAME, "button"))
    assert "Select at least one finding" in driver.find_element(By.CSS_SELECTOR, "p.flash.error").text
    assert not fleet.iot.list_audit_mitigation_actions_tasks(
        startTime=T0 - 60, endTime=time.time() + 60)["tasks"], "a task started without findings"
    logging_finding = [f for f in fleet.iot.list_audit_findings(checkName="LOGGING_DISABLED_CHECK",
                                                                startTime=T0 - 60, endTime=time.time() + 60)["findings"]]
    assert len(logging_finding) == 1, logging_finding
    finding_id = logging_finding[0]["findingId"]
    driver.find_element(By.XPATH, f"//input[@type='checkbox'][@name='finding'][@value='{finding_id}']").click()
    mitigate = driver.find_element(By.ID, "mitigate")
    Select(mitigate.find_element(By.NAME, "action")).select_by_value("console-logging")
    check("13c-audit-mitigate-form", "Audit")
    submit(mitigate.find_element(By.TAG_NAME, "button"))
    flash = driver.find_element(By.CSS_SELECTOR, "p.flash").text
    assert "Started console-logging on 1 finding(s) as audit mitigation task console-" in flash, flash
    assert "/console/mitigations?" in driver.current_url, driver.current_url
    audit_task = re.search(r"task (console-[A-Za-z0-9_-]+)", flash).group(1)
    wait_for("the audit mitigation task", lambda: fleet.iot.describe_audit_mitigation_actions_task(
        taskId=audit_task)["taskStatus"] != "IN_PROGRESS" or None, limit=10)
    described = fleet.iot.describe_audit_mitigation_actions_task(taskId=audit_task)
    assert described["taskStatus"] == "COMPLETED", described
    assert described["target"] == {"findingIds": [finding_id]}, described["target"]
    assert described["auditCheckToActionsMapping"] == {"LOGGING_DISABLED_CHECK": ["console-logging"]}, described
    opts = fleet.iot.get_v2_logging_options()
    assert opts["defaultLogLevel"] == "WARN" and not opts["disableAllLogs"], opts
    driver.refresh()
    row = driver.find_element(By.XPATH, f"//table[contains(@class,'audit-executions')]//tr[contains(., '{audit_task}')]")
    assert finding_id in row.get_attribute("innerHTML"), row.get_attribute("innerHTML")
    assert "COMPLETED" in row.text and "console-logging" in row.text, row.text
    task_row = driver.find_element(By.XPATH, f"//table[contains(@class,'audit-tasks')]//tr[contains(., '{audit_task}')]")
    assert "COMPLETED" in task_row.text and "LOGGING_DISABLED_CHECK → console-logging" in task_row.text, task_row.text
    check("13d-audit-mitigated", "Mitigations")

    visit("/console/certificates", "14-certificates", "Certificates and CAs")

    # Start a mitigation on the alarm: noisy-1 goes into the quarantine group.
    fleet.iot.create_thing_group(thingGroupName="console-quarantine")
    fleet.iot.create_mitigation_action(
        actionName="console-quarantine",
        roleArn=ROLE,
        actionParams={"addThingsToThingGroupParams": {"thingGroupNames": ["console-quarantine"]}},
    )
    driver.get(base + "/console/alarms?thing=noisy-1")
    start = driver.find_element(
        By.XPATH, f"//form[@action='/console/mitigations/start'][input[@name='violation_id' and @value='{violation_id}']]"
    )
    Select(start.find_element(By.NAME, "action")).select_by_value("console-quarantine")
    submit(start.find_element(By.TAG_NAME, "button"))
    flash = driver.find_element(By.CSS_SELECTOR, "p.flash").text
    assert "Started console-quarantine" in flash, flash
    wait_for("noisy-1 in the quarantine group", lambda: "noisy-1" in fleet.iot.list_things_in_thing_group(
        thingGroupName="console-quarantine")["things"], limit=10)
    driver.refresh()
    wait_for("the execution on the page", lambda: driver.find_elements(
        By.XPATH, "//table[contains(@class,'executions')]//tr[contains(., 'noisy-1')][contains(., 'SUCCESSFUL')]") or driver.refresh(), limit=10)
    check("15-mitigations", "Mitigations")

    # The live stream shows an alarm raised while the page is open.
    visit("/console/live", "16-live", "Live events")
    wait_for("the stream to open", lambda: driver.find_element(By.ID, "live-status").text.startswith("Live:"), limit=10)
    later.connect()
    later.publish("t/noisy", n=8)
    wait_for(
        "noisy-2's alarm on the live page",
        lambda: driver.find_elements(By.XPATH, "//ul[@id='events']/li[contains(@class,'new')][contains(., 'noisy-2')]"),
        limit=15,
    )
    check("17-live-new-alarm", "Live events")

    submit(driver.find_element(By.CSS_SELECTOR, "form.signout button"))
    assert "/console/login" in driver.current_url
    driver.get(base + "/console/")
    assert "/console/login" in driver.current_url, "still logged in after sign-out"
    step("signed out")
finally:
    chatter_stop.set()
    driver.quit()
    for d in (noisy, later):
        if d.client is not None:
            d.disconnect()

print("ok console", flush=True)
