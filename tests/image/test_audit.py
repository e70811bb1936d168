#!/usr/bin/env python3
"""casulo image audit: every check finds the problem an image built here
carries, with the layer that introduced it (deleted files included);
clean busybox and Debian-like images give no finding; text, JSON and
SARIF; --exit-level, ignores; the dpkg and apk inventory."""
import json
import os
import subprocess
import sys
import tarfile
import io

sys.path.insert(0, os.path.dirname(__file__))
from imagetest import (D, F, H, Image, W, busybox_tar, casulo, contains, eq, main, new_root, tar_bytes,  # noqa: E402
                       test, tmpdir, Skip)

_key = []


def private_key():
    if not _key:
        p = subprocess.run(['openssl', 'genpkey', '-algorithm', 'ed25519'], capture_output=True, check=True)
        _key.append(p.stdout)
    return _key[0]


AWS_KEY = 'AKIA' + 'Q3EGRA7XW2LKPM5N'      # not the documentation's ...EXAMPLE
GITHUB_TOKEN = 'ghp_' + 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'


def problem_image():
    base = tar_bytes([
        F('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\nguest::1001:1001::/:/bin/sh\n'),
        F('etc/shadow', 'root::19000:0:99999:7:::\ntoor:*:19000::::::\n', mode=0o640),
        F('etc/group', 'root:x:0:\nwheel:x:0:\n'),
        F('usr/bin/evil', 'x', mode=0o4755), F('usr/bin/sudo', 'sudo', mode=0o4755),
        F('srv/open', 'anyone', mode=0o666), D('srv/share', mode=0o777), D('srv/tmp', mode=0o1777),
        F('var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease', 'x' * 1000),
        F('var/lib/apt/lists/lock', ''), F('var/cache/apt/archives/foo_1.0_amd64.deb', 'deb'),
        D('app/.git'), F('app/.git/HEAD', 'ref: refs/heads/main\n'),
    ])
    secrets = tar_bytes([
        D('root/.ssh', mode=0o700), F('root/.ssh/id_ed25519', private_key(), mode=0o600),
        F('app/.env', 'DB_PASSWORD=hunter2\n'), F('app/.env.example', 'DB_PASSWORD=\n'),
        F('root/.aws/credentials', '[default]\naws_access_key_id = x\naws_secret_access_key = y\n'),
        F('app/config.js', f'const key = "{AWS_KEY}";\n'), F('app/deploy.sh', f'export GH={GITHUB_TOKEN}\n'),
        F('root/.git-credentials', 'https://u:p@example.com\n'),
        F('usr/share/doc/x/example.pem', private_key()),  # documentation: not scanned
    ])
    cleanup = tar_bytes([W('root/.ssh/id_ed25519'), W('app/.env'), F('app/readme', 'clean now')])
    history = [{'created_by': 'COPY rootfs /'}, {'created_by': 'ADD https://example.com/secrets.tar /'},
               {'created_by': '/bin/sh -c curl -fsSL https://example.com/install.sh | sh', 'empty_layer': True},
               {'created_by': 'RUN rm -f /root/.ssh/id_ed25519 /app/.env'}]
    return Image([busybox_tar() + b'', base, secrets, cleanup], history=[{'created_by': 'busybox'}] + history,
                 config={'Env': ['PATH=/bin', 'DB_PASSWORD=hunter2', 'API_TOKEN_FILE=/run/secrets/t',
                                 f'DEPLOY={GITHUB_TOKEN}'],
                         'Labels': {'maintainer': 'me', 'api_key': 'abc123'}})


def audit_json(root, what, *extra):
    p = casulo('image', 'audit', '--format', 'json', *extra, what, root=root)
    assert p.returncode in (0, 3), f'audit: {p.returncode} {p.stderr}'
    return json.loads(p.stdout), p


_problems = []


def problems():
    if not _problems:
        root = new_root()
        img = problem_image()
        casulo('image', 'import', img.write_layout(tmpdir('problems'), 'latest'), 'localhost/problems:latest',
               root=root, check=True)
        _problems.append((root, img))
    return _problems[0]


@test
def every_problem_is_found_with_its_layer():
    root, img = problems()
    rep, _ = audit_json(root, 'localhost/problems:latest')
    found = {(f['check'], f['evidence']): f for f in rep['findings']}
    L = [x['digest'] for x in img.layers]
    want = {
        ('empty-password', 'etc/shadow'): L[1], ('empty-password', 'etc/passwd'): L[1],
        ('duplicate-uid', 'etc/passwd'): L[1], ('duplicate-gid', 'etc/group'): L[1],
        ('setuid', 'usr/bin/evil'): L[1], ('sudo', 'usr/bin/sudo'): L[1], ('setuid', 'usr/bin/sudo'): L[1],
        ('world-writable', 'srv/open'): L[1], ('world-writable', 'srv/share'): L[1],
        ('package-cache', 'var/lib/apt/lists'): L[1], ('package-cache', 'var/cache/apt/archives'): L[1],
        ('git-directory', 'app/.git'): L[1],
        ('private-key', 'root/.ssh/id_ed25519'): L[2], ('env-file', 'app/.env'): L[2],
        ('cloud-credentials', 'root/.aws/credentials'): L[2], ('cloud-credentials', 'app/config.js'): L[2],
        ('token', 'app/deploy.sh'): L[2], ('credential-file', 'root/.git-credentials'): L[2],
        ('remote-source', 'history[2]'): L[2], ('remote-source', 'history[3]'): None,
        ('user-root', 'config.User'): None, ('secret-env', 'ENV DB_PASSWORD'): None,
        ('secret-env', 'ENV DEPLOY'): None, ('secret-label', 'label api_key'): None,
        ('latest-tag', 'localhost/problems:latest'): None,
    }
    for key, layer in want.items():
        assert key in found, f'{key} not found; found: {sorted(found)}'
        eq(found[key]['layer'], layer, f'layer of {key}')
        assert found[key]['fix'], f'{key} has a fix'
    extra = set(found) - set(want)
    eq(sorted(extra), [], 'nothing else (the .env.example, the sticky dir, the doc key, the _FILE env are fine)')
    contains(found[('private-key', 'root/.ssh/id_ed25519')]['detail'], 'deleted by a later layer, still shipped',
             'a deleted key is still reported')
    eq(found[('setuid', 'usr/bin/evil')]['severity'], 'low', 'severity')
    eq(found[('private-key', 'root/.ssh/id_ed25519')]['severity'], 'critical', 'severity')
    eq(rep['summary']['critical'], 5, 'criticals')


@test
def text_sarif_exit_level_and_ignores():
    root, _ = problems()
    p = casulo('image', 'audit', 'localhost/problems:latest', root=root)
    eq(p.returncode, 0, 'no --exit-level: findings do not fail')
    contains(p.stdout, 'CRITICAL private-key', 'text output')
    contains(p.stdout, 'fix: ', 'with a fix')
    eq(casulo('image', 'audit', '--exit-level', 'critical', 'localhost/problems:latest', root=root).returncode, 3,
       '--exit-level critical')
    p = casulo('image', 'audit', '--format', 'sarif', 'localhost/problems:latest', root=root)
    sarif = json.loads(p.stdout)
    eq(sarif['version'], '2.1.0', 'SARIF version')
    run = sarif['runs'][0]
    rules = {r['id'] for r in run['tool']['driver']['rules']}
    results = run['results']
    assert all(r['ruleId'] in rules for r in results), 'every result names a rule'
    assert any(r['ruleId'] == 'private-key' and r['level'] == 'error' for r in results), 'levels'
    assert all(r['locations'][0]['physicalLocation']['artifactLocation']['uri'] for r in results), 'locations'
    rep, _ = audit_json(root, 'localhost/problems:latest', '--ignore', 'private-key', '--ignore', 'setuid:usr/bin/*')
    checks = [f['check'] for f in rep['findings']]
    assert 'private-key' not in checks and 'setuid' not in checks, checks
    eq(rep['ignored'], 3, 'ignored count (one key, two setuid files)')
    ignore = os.path.join(tmpdir('ign'), 'ignore')
    with open(ignore, 'w') as f:
        f.write('# accepted risks\nempty-password\nworld-writable srv/*\n')
    rep, _ = audit_json(root, 'localhost/problems:latest', '--ignore-file', ignore)
    checks = [f['check'] for f in rep['findings']]
    assert 'empty-password' not in checks and 'world-writable' not in checks, checks
    p = casulo('image', 'audit', '--ignore', 'no-such-check', 'localhost/problems:latest', root=root)
    contains(p.stderr, "no check named 'no-such-check'", 'unknown check in an ignore')


@test
def audit_a_path_without_importing():
    _, img = problems()
    layout = img.write_layout(tmpdir('audit-path'), 'v1')
    rep, _ = audit_json(new_root(), layout)
    assert ('private-key', 'root/.ssh/id_ed25519') in {(f['check'], f['evidence']) for f in rep['findings']}
    docker = img.write_docker_archive(os.path.join(tmpdir('audit-path'), 'd.tar'), [])
    rep, _ = audit_json(new_root(), docker)
    assert any(f['check'] == 'token' for f in rep['findings']), 'a docker archive without tags'


@test
def unsafe_paths_are_reported():
    bad = Image([busybox_tar(), tar_bytes([F('../../etc/cron.d/x', 'evil'), F('ok', 'x'), H('h', '../../etc/passwd')])],
                config={'User': 'user'})
    root = new_root()
    casulo('image', 'import', bad.write_layout(tmpdir('bad'), '1'), 'localhost/bad:1', root=root, check=True)
    rep, _ = audit_json(root, 'localhost/bad:1')
    eq(sorted(f['evidence'] for f in rep['findings'] if f['check'] == 'unsafe-path'),
       ['../../etc/cron.d/x', 'h'], 'both escapes')


@test
def a_clean_busybox_image_has_no_finding():
    img = Image([busybox_tar()], config={'User': 'user', 'Cmd': ['sh']})
    root = new_root()
    casulo('image', 'import', img.write_layout(tmpdir('clean'), '1.36'), 'localhost/busybox:1.36', root=root,
           check=True)
    p = casulo('image', 'audit', '--exit-level', 'info', 'localhost/busybox:1.36', root=root)
    eq(p.returncode, 0, f'no finding: {p.stdout}')
    contains(p.stdout, '0 findings', 'says so')


def debian_like_layers():
    """Files of Debian packages installed on this machine, as a base
    image would hold them, with their dpkg status entries."""
    pkgs = ['base-files', 'base-passwd', 'libc6', 'bash', 'zlib1g', 'libzstd1', 'ca-certificates', 'openssl']
    have = subprocess.run(['dpkg-query', '-W', '-f', '${Package} ${Status}\\n'] + pkgs, capture_output=True,
                          text=True).stdout
    pkgs = [line.split()[0] for line in have.splitlines() if line.endswith('installed')]
    if len(pkgs) < 4:
        raise Skip('too few Debian packages installed to build the image')
    buf = io.BytesIO()
    seen = set()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as t:
        for pkg in pkgs:
            files = subprocess.run(['dpkg', '-L', pkg], capture_output=True, text=True).stdout.split('\n')
            for path in files:
                if not path.startswith('/') or path in seen or not os.path.lexists(path):
                    continue
                parts = path.strip('/').split('/')
                for i in range(1, len(parts)):  # parents first
                    parent = '/' + '/'.join(parts[:i])
                    if parent not in seen and os.path.isdir(parent):
                        seen.add(parent)
                        t.add(parent, arcname=parent.lstrip('/'), recursive=False)
                seen.add(path)
                t.add(path, arcname=path.lstrip('/'), recursive=False)
    status = subprocess.run(['dpkg-query', '-s'] + pkgs, capture_output=True, text=True).stdout
    passwd = open('/usr/share/base-passwd/passwd.master').read() if os.path.exists(
        '/usr/share/base-passwd/passwd.master') else 'root:x:0:0:root:/root:/bin/bash\n'
    group = open('/usr/share/base-passwd/group.master').read() if os.path.exists(
        '/usr/share/base-passwd/group.master') else 'root:x:0:\n'
    passwd = ''.join(line.replace(':*:', ':x:', 1) + '\n' for line in passwd.splitlines())
    shadow = ''.join(line.split(':')[0] + ':*:19000:0:99999:7:::\n' for line in passwd.splitlines())
    etc = tar_bytes([D('etc'), F('etc/passwd', passwd), F('etc/group', group), F('etc/shadow', shadow, mode=0o640),
                     D('var/lib/dpkg'), F('var/lib/dpkg/status', status), D('tmp', mode=0o1777),
                     D('var/lib/apt/lists'), F('var/lib/apt/lists/lock', '', mode=0o640)])
    return buf.getvalue(), etc, pkgs


@test
def a_clean_debian_like_image_has_no_finding_and_lists_its_packages():
    files, etc, pkgs = debian_like_layers()
    img = Image([files, etc], config={'User': 'nobody', 'Cmd': ['bash']})
    root = new_root()
    casulo('image', 'import', img.write_layout(tmpdir('debian'), '12'), 'localhost/debian-like:12', root=root,
           check=True)
    rep, p = audit_json(root, 'localhost/debian-like:12', '--exit-level', 'info')
    eq([(f['check'], f['evidence']) for f in rep['findings']], [], 'no false positive')
    eq(p.returncode, 0, 'exit 0')
    p = casulo('image', 'audit', '--sbom', 'cyclonedx', 'localhost/debian-like:12', root=root, check=True)
    bom = json.loads(p.stdout)
    eq((bom['bomFormat'], bom['specVersion']), ('CycloneDX', '1.5'), 'CycloneDX')
    names = {c['name'] for c in bom['components']}
    eq(sorted(names), sorted(pkgs), 'every installed package')
    libc = next((c for c in bom['components'] if c['name'] == 'bash'), None)
    assert libc and libc['purl'].startswith('pkg:deb/debian/bash@') and 'arch=amd64' in libc['purl'], libc
    layer = img.layers[1]['digest']
    assert {'name': 'casulo:layer', 'value': layer} in libc['properties'], 'the layer of the status file'
    sbom_file = os.path.join(tmpdir('sbom'), 'spdx.json')
    p = casulo('image', 'audit', '--sbom', 'spdx', '--sbom-file', sbom_file, 'localhost/debian-like:12', root=root)
    eq(p.returncode, 0, 'findings printed beside the file')
    contains(p.stdout, '0 findings', 'the findings on stdout')
    spdx = json.load(open(sbom_file))
    eq(spdx['spdxVersion'], 'SPDX-2.3', 'SPDX')
    pk = {x['name'] for x in spdx['packages']}
    assert set(pkgs) <= pk, f'{pkgs} in {pk}'
    assert all(x['externalRefs'][0]['referenceLocator'].startswith('pkg:deb/')
               for x in spdx['packages'] if x['SPDXID'] != 'SPDXRef-Image'), 'purls'


@test
def apk_database_inventory():
    db = ('C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\n\n'
          'C:Q1def=\nP:busybox\nV:1.36.1-r5\nA:x86_64\nL:GPL-2.0-only\no:busybox\n\n')
    img = Image([busybox_tar(), tar_bytes([F('lib/apk/db/installed', db),
                                           F('etc/os-release', 'ID=alpine\nVERSION_ID=3.19.1\n')])],
                config={'User': 'user'})
    root = new_root()
    casulo('image', 'import', img.write_layout(tmpdir('apk'), '3.19'), 'localhost/alpine-like:3.19', root=root,
           check=True)
    bom = json.loads(casulo('image', 'audit', '--sbom', 'cyclonedx', 'localhost/alpine-like:3.19', root=root,
                            check=True).stdout)
    got = {c['name']: c for c in bom['components']}
    eq(sorted(got), ['busybox', 'musl'], 'apk packages')
    eq(got['musl']['purl'], 'pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1', 'purl')
    eq(got['musl']['licenses'][0]['license']['name'], 'MIT', 'license from the database')


@test
def run_refuses_an_image_over_the_audit_level():
    root, _ = problems()
    p = casulo('run', '--rm', '--audit-level', 'high', 'localhost/problems:latest', 'true', root=root)
    eq(p.returncode, 1, 'refused')
    contains(p.stderr, 'image refused', 'says why')
    contains(p.stderr, 'private-key', 'with the findings')
    clean = Image([busybox_tar()], config={'User': 'user', 'Cmd': ['echo', 'clean']})
    casulo('image', 'import', clean.write_layout(tmpdir('c'), '1'), 'localhost/clean-run:1', root=root, check=True)
    p = casulo('run', '--rm', '--audit-level', 'high', 'localhost/clean-run:1', root=root)
    eq((p.returncode, p.stdout.strip()), (0, 'clean'), f'a clean image runs: {p.stderr}')


if __name__ == '__main__':
    sys.exit(main())
