"""Stand-in for modules/errors.py (A1111 v1.10.1, 82a973c0): report() prints and returns; the
stand-in also records each message in `reported` so tests can see errors the WebUI swallowed."""

import traceback

reported = []


def report(message: str, *, exc_info: bool = False) -> None:
    text = message + ("\n" + traceback.format_exc() if exc_info else "")
    reported.append(text)
    print("*** " + text)


def display(e: Exception, task, *, full_traceback=False):
    report(f"{task or 'error'}: {type(e).__name__}: {e}")


def print_error_explanation(message):
    print(message)
