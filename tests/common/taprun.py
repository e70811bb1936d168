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


# A guest that stops in the lab: nested SVM on QEMU's TCG now and then
# resets a busy L2 guest with a triple fault, or wedges it (docs/lab.md).
# In the lab only, a test whose guest did so runs again, at most this many
# times more, and its result line says so; a guest that truly cannot run
# fails every try.  On a host with hardware virtualization it is a failure.
LAB_FAULT_RETRIES = 2


def in_lab():
    return os.environ.get('CASULO_IN_LAB') == '1'


def run_with_lab_retries(fn, lab_fault, name, between=None):
    """fn(), again after a lab guest fault: lab_fault(exception) says what
    the fault was, or None when the exception is not one.  between() runs
    before each new try (to clean up what the last left).  Returns fn()'s
    value and the number of faults; a fault that comes back more than
    LAB_FAULT_RETRIES times is a Failure that says so."""
    faults = 0
    while True:
        try:
            return fn(), faults
        except Skip:
            raise
        except Exception as e:  # noqa: BLE001 - looked at, then raised again
            why = lab_fault(e) if in_lab() else None
            if why is None:
                raise
            faults += 1
            if faults > LAB_FAULT_RETRIES:
                raise Failure('%s (%d times in a row)' % (e, faults)) from e
            print('# %s; running %s again' % (why.splitlines()[0][-300:] if why else 'a lab guest fault', name),
                  flush=True)
            if between:
                between()


def with_fault_note(note, faults):
    """A test's result note, with the lab guest faults it ran through."""
    if not faults:
        return note
    return (note + '; ' if note else '') + 'after %d lab guest fault%s' % (faults, 's' * (faults > 1))


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
