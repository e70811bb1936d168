#!/usr/bin/env python3
"""A hostile guest agent, on the host, without KVM: casulo-runtime --vm
starts a fake casulo-vmm (fake_vmm.py, through CASULO_VMM) that speaks
the agent's side of the vsock protocol (src/vmc/proto.h) wrongly on
purpose.  Whatever it sends, the runtime ends the container with a clear
one-line error or status, leaves nothing behind (state, cgroup, the fake
VMM, mounts), and never hangs."""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from ocitest import (RUNTIME, STATE_ROOT, Bundle, Clean, contains, eq, fails, main, ok_run, processes_with,  # noqa: E402
                     rt, test, unique_id)

FAKE_VMM = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fake_vmm.py')
GUEST = tempfile.mkdtemp(prefix='fake-guest.')
for name in ('vmlinux', 'initrd.img'):
    open(os.path.join(GUEST, name), 'w').close()


def vm_rt(scenario, *args, timeout=60):
    env = dict(os.environ, CASULO_VMM=FAKE_VMM, CASULO_GUEST_DIR=GUEST, FAKE_VMM_SCENARIO=scenario)
    return rt('--vm', *args, env=env, timeout=timeout)


def no_fake_vmm_left():
    left = processes_with('fake_vmm.py')
    if left:
        raise AssertionError(f'fake VMMs {left} left behind')


def create_fails(scenario, *needles):
    b = Bundle(['true'])
    cid = unique_id()
    clean = Clean(cid)
    start = time.time()
    p = vm_rt(scenario, 'create', '--bundle', b.dir, cid)
    err = fails(p, *needles, what=f'create against a {scenario} agent')
    if len(err.strip().splitlines()) != 1:
        raise AssertionError(f'not one line: {err!r}')
    if '\x1b' in err:
        raise AssertionError(f'an escape sequence from the guest reached the terminal: {err!r}')
    if time.time() - start > 40:
        raise AssertionError(f'{scenario}: took {time.time() - start:.0f} s')
    clean.check()
    no_fake_vmm_left()


@test
def garbage_instead_of_a_hello():
    create_fails('garbage', 'frame type', 'unknown')


@test
def a_huge_frame_is_refused_unread():
    create_fails('huge', 'at most')


@test
def a_frame_the_guest_may_not_send():
    create_fails('request', 'REQUEST', 'sent by the guest')


@test
def exit_before_hello():
    create_fails('exit-first', 'EXIT', 'not HELLO')


@test
def a_reply_with_bad_fields():
    create_fails('bad-reply', 'reply', 'pid')


@test
def an_error_reply_with_escape_sequences():
    create_fails('evil-error', 'evil')


@test
def a_vm_that_dies_before_its_reply():
    create_fails('die', 'agent connection')


@test
def a_hostile_frame_while_running_ends_the_container():
    for scenario, needle in (('running-bad-frame', 'broke the protocol'), ('running-bad-exit', 'broke the protocol'),
                             ('running-die', 'stopped')):
        b = Bundle(['true'])
        cid = unique_id()
        clean = Clean(cid)
        p = vm_rt(scenario, 'run', '--bundle', b.dir, cid)
        eq(p.returncode, 255, f'{scenario}: status (stderr {p.stderr.strip()!r})')
        contains(p.stdout, 'output before', f'{scenario}: output relayed before')
        contains(p.stderr, needle, f'{scenario}: the error')
        clean.check()
        no_fake_vmm_left()


@test
def an_honest_fake_agent_gives_the_status():
    b = Bundle(['true'])
    cid = unique_id()
    clean = Clean(cid)
    p = vm_rt('honest', 'run', '--bundle', b.dir, cid)
    eq(p.returncode, 42, f'status (stderr {p.stderr.strip()!r})')
    eq(p.stdout, 'output before\n', 'output')
    clean.check()
    # create, state, kill and delete against it
    cid = unique_id()
    clean = Clean(cid)
    ok_run(vm_rt('honest', 'create', '--bundle', b.dir, cid), 'create')
    st = ok_run(rt('state', cid))
    contains(st, '"created"', 'state')
    ok_run(rt('delete', '--force', cid), 'delete --force')
    clean.check()
    no_fake_vmm_left()


if __name__ == '__main__':
    try:
        rc = main()
    finally:
        import shutil
        shutil.rmtree(GUEST, ignore_errors=True)
    sys.exit(rc)
