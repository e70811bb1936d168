#!/usr/bin/python3
"""casulod's state across a reboot: two boots of the lab (tests/lab/run),
the state directory on a --rw share that outlives the first.  In the first
boot casulod defines VMs and containers, some with autostart, starts some,
and the machine goes down under them.  In the second, a new casulod on the
same state directory (and a fresh /run) finds every definition, marks what
ran as ended by the reboot, and autostarts the autostart ones in their
order.  Prints TAP; the lab side is this file with --phase N DIR."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from daemonlib import (BUILD, ROOT, Daemon, Failure, Skip, check, lab_cgroups, main, test, wait_for)

LAB_RUN = os.path.join(ROOT, 'tests', 'lab', 'run')
GUEST = os.path.join(BUILD, 'tests', 'kvm', 'test-guest.elf')
HANG = 'test=hang'


def daemon_in(base):
    # The state on the share; the run directory on L1's tmpfs /run, gone with it.
    run = tempfile.mkdtemp(prefix='cd-reboot-', dir='/run')
    d = Daemon(base=base, start=False)
    d.run = run
    d.sock = os.path.join(run, 'casulod.sock')
    d.log_path = os.path.join(run, 'casulod.log')
    d.start()
    return d


def bundle_in(base, args):
    """A bundle whose rootfs is on the share too (L1's /tmp goes)."""
    from ocitest import default_config, make_rootfs
    rootfs = os.path.join(base, 'rootfs')
    if not os.path.isdir(rootfs):
        make_rootfs(rootfs)
    b = os.path.join(base, 'bundle-' + args[-1].split()[0])
    os.makedirs(b, exist_ok=True)
    cfg = default_config(args, rootfs=rootfs)
    with open(os.path.join(b, 'config.json'), 'w') as f:
        json.dump(cfg, f)
    return b


def phase1(base):
    d = daemon_in(base)
    b = bundle_in(base, ['sh', '-c', 'while true; do sleep 1; done'])
    d.create('auto-vm', 'vm', {'kernel': GUEST, 'cmdline': HANG, 'memory_mib': 32},
             autostart={'enabled': True, 'order': 1, 'delay_s': 1})
    d.create('auto-ct', 'container', {'bundle': b}, autostart={'enabled': True, 'order': 2})
    d.create('ran', 'container', {'bundle': b})
    d.create('never', 'vm', {'kernel': GUEST, 'cmdline': HANG, 'memory_mib': 32})
    d.action('ran', 'start')
    d.action('auto-vm', 'start')
    check(d.get('/v1')['first_start_since_boot'], 'a first start')
    print('PHASE1 ' + json.dumps({i['name']: i['state'] for i in d.get('/v1/instances')}), flush=True)
    # The machine goes down now: casulod and everything it runs with it.
    return 0


def phase2(base):
    d = daemon_in(base)
    try:
        info = d.get('/v1')
        check(info['first_start_since_boot'], 'not a first start after the reboot: %r' % info)
        check(info['reattach'] == dict(info['reattach'], found=0), 'found something after a reboot: %r' % info)
        wait_for(lambda: d.instance('auto-ct')['state'] == 'running', 60, 'the autostart instances')
        insts = {i['name']: i for i in d.get('/v1/instances')}
        check(sorted(insts) == ['auto-ct', 'auto-vm', 'never', 'ran'], 'definitions: %r' % sorted(insts))
        check(insts['ran']['state'] == 'stopped' and insts['ran']['exit_reason'] == 'host-rebooted',
              'ran: %r' % insts['ran'])
        check(insts['never']['state'] == 'stopped' and insts['never']['exit_reason'] is None, 'never: %r' % insts['never'])
        check(insts['auto-vm']['state'] == 'running', 'auto-vm: %r' % insts['auto-vm'])
        gap = insts['auto-ct']['started_at'] - insts['auto-vm']['started_at']
        check(gap >= 1.0, 'order and delay: auto-ct started %.2f s after auto-vm' % gap)
        print('PHASE2 ok: autostart gap %.2f s' % gap, flush=True)
        return 0
    finally:
        d.cleanup()


def lab(base, phase):
    p = subprocess.run([LAB_RUN, '--timeout', '600', '--rw', base, '--', sys.executable, os.path.abspath(__file__),
                        '--phase', str(phase), base], capture_output=True, text=True, timeout=900)
    return p.returncode, p.stdout + p.stderr


@test
def state_survives_a_reboot():
    if subprocess.run([LAB_RUN, '--mode'], capture_output=True, text=True).stdout.strip() != 'lab':
        raise Skip('rebooting needs the lab (this host runs VMs directly)')
    if not os.path.exists(GUEST):
        raise Skip('the test guest is not built')
    base = tempfile.mkdtemp(prefix='cd-reboot-', dir=os.environ.get('TMPDIR', '/tmp'))
    try:
        rc, out = lab(base, 1)
        check(rc == 0 and 'PHASE1' in out, 'first boot: %d %s' % (rc, out[-1500:]))
        check(os.path.exists(os.path.join(base, 'state', 'casulod.db')), 'no database on the share')
        rc, out = lab(base, 2)
        check(rc == 0 and 'PHASE2 ok' in out, 'second boot: %d %s' % (rc, out[-1500:]))
        print('# ' + [ln for ln in out.splitlines() if 'PHASE2' in ln][0], flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == '__main__':
    if len(sys.argv) == 4 and sys.argv[1] == '--phase':
        lab_cgroups()
        raise SystemExit(phase1(sys.argv[3]) if sys.argv[2] == '1' else phase2(sys.argv[3]))
    raise SystemExit(main())
