# End to end in a real headless browser (Debian's chromium + chromium-driver through Selenium): a reader
# completes a short study by clicking (and once by keyboard), the server is SIGKILLed and restarted mid-study
# without losing an answer, a second reader sees nothing of the first's, and `analyze` gives the expected numbers.

import csv
import os
import shutil
import tempfile

import pytest

from fundus.turing import analyze, store
from fundus.turing.local_server import LocalServer

from .support import http, make_study

CHROMIUM, CHROMEDRIVER = shutil.which('chromium'), shutil.which('chromedriver')
pytestmark = pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                                reason='no headless browser: install Debian chromium and chromium-driver (.ci/run does)')

#----------------------------------------------------------------------------

@pytest.fixture
def browser():
    from selenium import webdriver # Optional: only this test drives a browser.
    from selenium.webdriver.chrome.service import Service
    profile = tempfile.mkdtemp(prefix='turing-chromium-')
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ('--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync',
                 f'--user-data-dir={profile}', '--window-size=1200,800'):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)

def _wait(driver, predicate, timeout=20):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: predicate(d))

def _shown(driver, position, total):
    """Wait until the page shows image `position` of `total`, loaded; return its image id."""
    _wait(driver, lambda d: d.find_element('id', 'where').text == f'Image {position} of {total}'
          and d.execute_script("const p = document.getElementById('photo'); return p.complete && p.naturalWidth > 0;"))
    return driver.execute_script("return document.getElementById('photo').src.split('/').pop();")

def _click_answer(driver, call, confidence):
    driver.find_element('id', f'call-{call}').click()
    driver.find_element('id', f'conf-{confidence}').click()
    driver.find_element('id', 'submit').click()

def _flip(truth):
    return 'real' if truth == 'synthetic' else 'synthetic'

#----------------------------------------------------------------------------

def test_reader_completes_study_in_browser_across_a_server_kill(tmp_path, browser):
    from selenium.webdriver.common.keys import Keys
    out, links = make_study(tmp_path, readers=('alice', 'bob'), count=4, practice=2)
    truth = {i: im['truth'] for i, im in store.load_tables(os.path.join(out, 'study.sqlite'))[1].items()}
    alice, bob = links['readers']['alice'], links['readers']['bob']
    # Plan: practice answered correctly; test positions 3 and 4 correct, 5 wrong, 6 correct (by keyboard).
    plan = {1: True, 2: True, 3: True, 4: True, 5: False, 6: True}
    server = LocalServer(out)
    try:
        browser.get(f'{server.base}/r/{alice}')
        _shown(browser, 1, 6)
        scale = "return new DOMMatrix(getComputedStyle(document.getElementById('photo')).transform).a;"
        assert browser.execute_script(scale) == 1.0                         # Full resolution: 24 px shown 1:1.
        browser.find_element('tag name', 'body').send_keys('+')
        assert abs(browser.execute_script(scale) - 1.25) < 1e-6
        for position in (1, 2):                                             # Practice: feedback shown, then continue.
            image_id = _shown(browser, position, 6)
            assert browser.find_element('id', 'practice-badge').is_displayed()
            _click_answer(browser, truth[image_id], 3)
            _wait(browser, lambda d: d.find_element('id', 'feedback').is_displayed())
            assert browser.find_element('id', 'feedback-text').text == f'Correct: this image is {truth[image_id]}.'
            browser.find_element('id', 'continue').click()
        for position in (3, 4):
            image_id = _shown(browser, position, 6)
            assert not browser.find_element('id', 'practice-badge').is_displayed()
            _click_answer(browser, truth[image_id] if plan[position] else _flip(truth[image_id]), 4)
        _shown(browser, 5, 6)                                               # Answer 4 was acknowledged.
        server.kill()
        assert len(store.load_tables(os.path.join(out, 'study.sqlite'))[3]) == 4
        server = LocalServer(out, port=server.port)
        browser.refresh()                                                   # Resume where the reader stopped.
        image_id = _shown(browser, 5, 6)
        _click_answer(browser, _flip(truth[image_id]), 2)
        image_id = _shown(browser, 6, 6)
        body = browser.find_element('tag name', 'body')
        body.send_keys('s' if truth[image_id] == 'synthetic' else 'r', '5', Keys.ENTER)
        _wait(browser, lambda d: d.find_element('id', 'done').is_displayed())
        assert browser.find_element('id', 'bar').get_attribute('value') == '6'
        # Bob sees his own fresh study and none of Alice's images or answers.
        browser.get(f'{server.base}/r/{bob}')
        _shown(browser, 1, 6)
        assert http(server.base, f'/api/r/{bob}/progress')[1] == {'answered': 0, 'total': 6}
        assert http(server.base, f'/api/r/{bob}/image/{image_id}')[0] == 404
        assert http(server.base, f'/api/r/{bob}/results')[0] == 403
    finally:
        server.kill()
    trials = store.load_tables(os.path.join(out, 'study.sqlite'))[3]
    mine = sorted((t for t in trials if t['reader'] == 'alice'), key=lambda t: t['position'])
    assert [t['position'] for t in mine] == [1, 2, 3, 4, 5, 6]
    assert [t['call'] == t['truth'] for t in mine] == [plan[p] for p in range(1, 7)]
    assert [t['confidence'] for t in mine] == [3, 3, 4, 4, 2, 5]
    html, csv_path = analyze.run(out, str(tmp_path / 'analysis'))
    rows = {(r['scope'], r['reader'], r['metric']): r for r in csv.DictReader(open(csv_path))}
    acc = rows['reader', 'alice', 'accuracy']
    assert (acc['n'], float(acc['value'])) == ('4', 0.75)                   # Practice not counted: 3 of 4.
    assert abs(float(acc['p']) - 0.625) < 1e-9                              # 2 * P(X >= 3 | 4, 0.5) = 2 * 5/16.
    assert abs(float(acc['lo']) - 0.19412044) < 1e-6 and abs(float(acc['hi']) - 0.99369063) < 1e-6

#----------------------------------------------------------------------------
