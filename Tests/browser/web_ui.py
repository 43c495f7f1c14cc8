"""The web page in a real browser (Debian's chromium + chromedriver, Selenium).

Usage: web_ui.py PAGE_URL MOUNT ARTIFACT_DIR

Against a fresh `apmatrix serve --host hosts/seed-example.json`, PAGE_URL
being the page's URL with the token that serve logs: checks that a change
without the token, or with a wrong one, is refused; sets up the seed's
first mdev through the mount, opens PAGE_URL (the token becomes an
HttpOnly, SameSite=Strict cookie and leaves the address bar) and checks the grid;
changes the host through the mount and waits for the page to follow; assigns a
domain from the page (with its confirmation) and reads it back from the
mount; tries a refused assignment and checks the page shows the kernel's
errno and message; saves screenshots at 1280x800 and at 420x800.
Every wait is bounded; any failure raises (exit status 1).
"""
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

PAGE, MOUNT, ARTIFACTS = sys.argv[1], sys.argv[2], sys.argv[3]
_url = urllib.parse.urlsplit(PAGE)
BASE = f"{_url.scheme}://{_url.netloc}"
TOKEN = urllib.parse.parse_qs(_url.query)["token"][0]
U1 = "62177883-f1bb-47f0-914d-32a22e3a8804"
MDEV = f"{MOUNT}/devices/vfio_ap/matrix/{U1}"
WAIT = 10  # seconds for the page to show a change


def echo(path, value):
    """`echo value > path` on the mount: one write()."""
    with open(path, "w") as f:
        f.write(value + "\n")


def cat(path):
    with open(path) as f:
        return f.read()


def cell(driver, apqn):
    a, q = apqn.split(".")
    return driver.find_element(By.CSS_SELECTOR, f'td[data-apid="{int(a, 16)}"][data-apqi="{int(q, 16)}"]')


def wait_cell(driver, apqn, state, letter):
    """Waits until the grid shows `apqn` in `state` with `letter` (readable without colour)."""
    def shown(d):
        try:
            c = cell(d, apqn)
            return f"s-{state}" in c.get_attribute("class").split() and c.text == letter
        except Exception:
            return False
    try:
        WebDriverWait(driver, WAIT, poll_frequency=0.1).until(shown)
    except Exception:
        c = cell(driver, apqn)
        raise AssertionError(f"{apqn}: want {state}/{letter}, page shows {c.get_attribute('class')}/{c.text!r}")


def post(path, body, token=None):
    """A change through the API: its HTTP status and JSON answer."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(BASE + path, method="POST", headers=headers, data=json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def confirm(driver):
    ok = WebDriverWait(driver, WAIT).until(EC.element_to_be_clickable((By.ID, "confirm-ok")))
    ok.click()


def show_all(driver):
    """"Show all ids" draws the 256x256 cells once; an event then changes only
    the cells it concerns (a marked cell survives every update). Prints how
    long each change took from the write on the mount to the cell on screen
    (for BENCHMARKS.md; nothing here asserts a time)."""
    driver.find_element(By.ID, "show-all").click()
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.querySelectorAll('#grid td').length") == 65536)
    driver.execute_script("""
        document.querySelector('td[data-apid="0"][data-apqi="200"]').dataset.marker = "kept";
        const td = document.querySelector('td[data-apid="7"][data-apqi="4"]');
        window.__changes = [];
        new MutationObserver(() => window.__changes.push(Date.now())).observe(td, { attributes: true, attributeFilter: ["class"] });
    """)
    latencies = []
    for i in range(10):
        seen = len(latencies)
        start = time.time() * 1000
        echo(f"{MOUNT}/bus/ap/drivers/vfio_ap/{'unbind' if i % 2 == 0 else 'bind'}", "07.0004")
        WebDriverWait(driver, WAIT, poll_frequency=0.01).until(
            lambda d: d.execute_script("return window.__changes.length") > seen)
        latencies.append(driver.execute_script("return window.__changes[arguments[0]]", seen) - start)
    wait_cell(driver, "07.0004", "free", "F")
    assert driver.execute_script('return document.querySelector(\'td[data-apid="0"][data-apqi="200"]\').dataset.marker') == "kept", \
        "the grid was drawn again: every update must change only its cells"
    latencies.sort()
    print(f"show-all update latency: median {latencies[5]:.0f} ms, {latencies[0]:.0f}-{latencies[-1]:.0f} ms over {len(latencies)} changes")
    driver.find_element(By.ID, "show-all").click()


def main():
    # Without the token, or with a wrong one, the API changes nothing.
    for token in (None, "0" * 64):
        status, answer = post("/api/v1/sysfs", {"path": "bus/ap/apmask", "value": "-5"}, token)
        assert status == 401 and answer["error"]["errno"] == "EACCES", (status, answer)
    assert cat(f"{MOUNT}/bus/ap/apmask") == "0x" + "f" * 64 + "\n", cat(f"{MOUNT}/bus/ap/apmask")

    # The seed's first mdev, through the mount (README walk-through).
    echo(f"{MOUNT}/bus/ap/apmask", "-5,-6")
    echo(f"{MOUNT}/bus/ap/aqmask", "-4,-0x47,-0xab,-0xff")
    echo(f"{MOUNT}/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create", U1)
    for attr, value in [("assign_adapter", "5"), ("assign_adapter", "6"), ("assign_domain", "4"),
                        ("assign_domain", "0x47"), ("assign_control_domain", "4")]:
        echo(f"{MDEV}/{attr}", value)

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,800", "--no-first-run", "--disable-extensions"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.set_page_load_timeout(30)
        driver.set_script_timeout(30)
        driver.set_window_size(1280, 800)
        driver.get(PAGE)
        WebDriverWait(driver, WAIT).until(EC.text_to_be_present_in_element((By.ID, "live"), "live"))
        assert driver.current_url == BASE + "/", f"the token stayed in the address bar: {driver.current_url}"
        cookies = driver.get_cookies()
        assert [(c["name"], c["httpOnly"], c.get("sameSite")) for c in cookies] == \
            [(f"apmatrix_token_{_url.port}", True, "Strict")], cookies

        # The known scenario: V4 masks, the first mdev assigned 5,6 x 4,0x47.
        wait_cell(driver, "05.0004", "assigned", "A")
        wait_cell(driver, "06.0047", "assigned", "A")
        wait_cell(driver, "04.0000", "host", "H")
        wait_cell(driver, "07.0001", "host", "H")
        wait_cell(driver, "05.0000", "free", "F")
        wait_cell(driver, "07.0004", "free", "F")
        ids = driver.find_element(By.ID, "apmask-ids").text
        assert ids == "ids 0-4,7-255", ids

        # A guest starts through the API, then a queue leaves vfio_ap through the mount.
        status, answer = post("/api/v1/guests", {"name": "guest1", "device":
                                                 f"vfio-ap,sysfsdev=/sys/devices/vfio_ap/matrix/{U1},id=hostdev0"}, TOKEN)
        assert status == 201, (status, answer)
        wait_cell(driver, "06.0004", "in-guest", "G")
        echo(f"{MOUNT}/bus/ap/drivers/vfio_ap/unbind", "06.0047")
        wait_cell(driver, "06.0004", "filtered", "X")
        wait_cell(driver, "05.0004", "in-guest", "G")

        # The side panel explains the filtered cell; arrow keys move the focus.
        cell(driver, "06.0004").click()
        WebDriverWait(driver, WAIT).until(EC.text_to_be_present_in_element(
            (By.ID, "cell-explanation"), "queue 06.0047 is bound to no driver (unbound)"))
        driver.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
        focused = driver.switch_to.active_element
        assert (focused.get_attribute("data-apid"), focused.get_attribute("data-apqi")) == ("6", "5"), \
            focused.get_attribute("outerHTML")
        WebDriverWait(driver, WAIT).until(EC.text_to_be_present_in_element((By.ID, "cell-title"), "06.0005"))

        # An action from the page: assign domain 0xab to the selected mdev, confirmed.
        driver.find_element(By.CSS_SELECTOR, f'input[name="mdev"][value="{U1}"]').click()
        Select(driver.find_element(By.ID, "assign-attr")).select_by_visible_text("assign_domain")
        driver.find_element(By.ID, "assign-value").send_keys("0xab")
        driver.find_element(By.ID, "assign-submit").click()
        confirm(driver)
        deadline = time.monotonic() + WAIT
        while "05.00ab" not in cat(f"{MDEV}/matrix"):
            assert time.monotonic() < deadline, "the page's assign_domain did not reach the mount: " + cat(f"{MDEV}/matrix")
            time.sleep(0.1)
        wait_cell(driver, "05.00ab", "in-guest", "G")

        # A refused action shows the kernel's errno and message, and changes nothing.
        before = cat(f"{MDEV}/matrix")
        Select(driver.find_element(By.ID, "assign-attr")).select_by_visible_text("assign_adapter")
        value = driver.find_element(By.ID, "assign-value")
        value.clear()
        value.send_keys("256")
        driver.find_element(By.ID, "assign-submit").click()
        confirm(driver)
        WebDriverWait(driver, WAIT).until(EC.text_to_be_present_in_element(
            (By.ID, "message"), "ENODEV (19): assign_adapter: 256 is above the maximum APID 255"))
        assert cat(f"{MDEV}/matrix") == before

        # The event log follows too.
        WebDriverWait(driver, WAIT).until(EC.text_to_be_present_in_element(
            (By.ID, "log"), "queue 06.0047 unbound from vfio_ap"))

        show_all(driver)

        cell(driver, "06.0004").click()
        driver.execute_script("window.scrollTo(0, 0)")
        os.makedirs(ARTIFACTS, exist_ok=True)
        wide = os.path.join(ARTIFACTS, "web-ui-1280x800.png")
        driver.save_screenshot(wide)
        driver.set_window_size(420, 800)
        WebDriverWait(driver, WAIT).until(lambda d: d.execute_script("return window.innerWidth") <= 420)
        driver.execute_script("window.scrollTo(0, 0)")
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= 420, f"the narrow page scrolls sideways: {width}px"
        narrow = os.path.join(ARTIFACTS, "web-ui-420x800.png")
        driver.save_screenshot(narrow)
        print(f"screenshots: {wide} {narrow}")
    finally:
        driver.quit()
    print("OK")


if __name__ == "__main__":
    main()
