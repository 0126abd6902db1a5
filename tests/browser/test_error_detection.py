"""The browser tests' error detectors catch what they claim to: console errors, JS exceptions, HTTP errors.

Without this, a detector that silently collects nothing would let every browser test pass.
"""
from .people import Person


def test_console_errors_exceptions_and_http_errors_are_collected(browser, otree_server):
    context = browser.new_context()
    try:
        person = Person(0, 'none', context.new_page())
        person.watch()
        person.page.goto(otree_server.base_url + '/no-such-page-here', wait_until='load')
        person.page.set_content('<p>x</p><script>console.error("broken widget"); undefinedFunction();</script>')
        person.page.wait_for_timeout(200)  # events arrive asynchronously
        problems = '\n'.join(person.problems)
        assert 'HTTP 404' in problems and '/no-such-page-here' in problems, problems
        assert 'console error' in problems and 'broken widget' in problems, problems
        assert 'uncaught JS exception' in problems and 'undefinedFunction' in problems, problems
    finally:
        context.close()


def test_a_healthy_page_has_no_problems(browser):
    context = browser.new_context()
    try:
        person = Person(0, 'none', context.new_page())
        person.watch()
        person.page.set_content('<p>fine</p><script>console.log("just a log line")</script>')
        person.page.wait_for_timeout(200)
        assert person.problems == []
    finally:
        context.close()
