"""The TAP runner of the Python suites (tests/api, tests/linux).

Each suite runs all its tests in one process, so that it costs one lab
boot where the host has no usable /dev/kvm (tests/lab/run, docs/lab.md).
A test is a function; it fails by raising Failure (or anything else) and
skips by raising Skip.
"""
import os
import sys
import time
import traceback


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def kvm_missing():
    """Why the suite cannot run here, or None.  tests/lab/run --or-skip
    says why through CASULO_NO_KVM when neither this host's /dev/kvm nor
    the lab works."""
    reason = os.environ.get('CASULO_NO_KVM')
    if reason:
        return reason
    if not os.access('/dev/kvm', os.R_OK | os.W_OK):
        return '/dev/kvm is not usable'
    return None


def run_tests(selected, run, skip=None):
    """Run run(t) for each test t, printing TAP (the plan too); run
    returns a note for the result line or None.  Every test is skipped
    with reason skip when it is given.  Returns the exit status.

    CASULO_TAP_DONE=N (set by tests/lab/run --tap when it booted a dead
    lab again) says the first N results and the plan are already printed:
    the run resumes after them."""
    done = int(os.environ.get('CASULO_TAP_DONE', '0') or 0)
    if done == 0:
        print('TAP version 13')
        print('1..%d' % len(selected), flush=True)
    failed = 0
    for i, t in enumerate(selected, 1):
        name = t.__name__
        if i <= done:
            continue
        if skip:
            print('ok %d - %s # SKIP %s' % (i, name, skip))
            continue
        start = time.monotonic()
        try:
            note = run(t)
            print('ok %d - %s (%.1fs)%s' % (i, name, time.monotonic() - start, ': ' + note if note else ''))
        except Skip as e:
            print('ok %d - %s # SKIP %s' % (i, name, e))
        except Failure as e:
            failed += 1
            # Every line of the message as a TAP comment: a message that
            # carries a program's output would otherwise leave its later
            # lines outside TAP, where a reader of the summary misses them.
            for line in (str(e) or repr(e)).splitlines() or ['']:
                print('# ' + line)
            print('not ok %d - %s' % (i, name))
        except Exception:
            failed += 1
            for line in traceback.format_exc().splitlines():
                print('# ' + line)
            print('not ok %d - %s' % (i, name))
        sys.stdout.flush()
    return 1 if failed else 0
