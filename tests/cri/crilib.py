"""A private containerd with its CRI plugin, driven through the project's own
CRI client (cri.proto, compiled at build time), for the `cri` suite and
bench/pod.sh.

Containerd(work) writes a config whose runtime handlers are casulo (the
runc shim with BinaryName = casulo-runtime), runc and crun, a CNI network
(bridge + host-local, loopback from containerd itself) on a bridge and
subnet of its own, starts containerd with root, state and socket under
`work`, imports a busybox image and a pause image built here (no registry
is reachable) and waits until the CRI reports the runtime and the network
ready.  close() removes every pod, stops containerd and removes the bridge.
"""
import hashlib
import io
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

PROTO_DIR = os.environ.get('CRI_PROTO_DIR') or os.path.join(os.path.dirname(__file__), '..', '..', 'build',
                                                             'tests', 'cri')
sys.path.insert(0, os.path.abspath(PROTO_DIR))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'oci'))

import grpc  # noqa: E402
import cri_pb2 as pb  # noqa: E402
import cri_pb2_grpc as pb_grpc  # noqa: E402
from ocitest import cgroup_mounts, make_rootfs  # noqa: E402

BUSYBOX_IMAGE = 'localhost/casulo/busybox:1'
PAUSE_IMAGE = 'localhost/casulo/pause:1'
NAMESPACE = 'k8s.io'  # where the CRI plugin keeps its images and containers
CNI_BIN = '/usr/lib/cni'
TOOLS = ('containerd', 'ctr', 'containerd-shim-runc-v2')
POD_ANNOTATIONS = 'io.casulo.vm.*'


class Unavailable(Exception):
    """The host cannot run containerd's CRI (a test skips, with this reason)."""


def sh(*cmd, timeout=120, check=True, **kw):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f'{" ".join(map(str, cmd))} exited {p.returncode}: {p.stderr.strip()[-500:]}')
    return p


# ---- images: OCI image layouts written here, imported with ctr ----

def _blob(tar, data):
    digest = 'sha256:' + hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo('blobs/sha256/' + digest[7:])
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    return {'digest': digest, 'size': len(data)}


def write_oci_archive(path, name, rootfs, config):
    """An OCI image layout tar of one uncompressed layer (rootfs as it is),
    named `name` by the annotation containerd's importer reads."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode='w') as t:
        for entry in sorted(os.listdir(rootfs)):
            t.add(os.path.join(rootfs, entry), arcname=entry)
    layer = layer.getvalue()
    image_config = {'architecture': 'amd64', 'os': 'linux', 'config': config,
                    'rootfs': {'type': 'layers', 'diff_ids': ['sha256:' + hashlib.sha256(layer).hexdigest()]}}
    with tarfile.open(path, 'w') as tar:
        layer_desc = _blob(tar, layer)
        config_desc = _blob(tar, json.dumps(image_config).encode())
        manifest = {'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                    'config': dict(config_desc, mediaType='application/vnd.oci.image.config.v1+json'),
                    'layers': [dict(layer_desc, mediaType='application/vnd.oci.image.layer.v1.tar')]}
        manifest_desc = _blob(tar, json.dumps(manifest).encode())
        index = {'schemaVersion': 2, 'manifests': [dict(
            manifest_desc, mediaType='application/vnd.oci.image.manifest.v1+json',
            annotations={'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': name.split(':')[-1]},
            platform={'architecture': 'amd64', 'os': 'linux'})]}
        for member, data in (('oci-layout', {'imageLayoutVersion': '1.0.0'}), ('index.json', index)):
            raw = json.dumps(data).encode()
            info = tarfile.TarInfo(member)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


def build_images(work, pause_binary):
    """The busybox and pause images as OCI archives; returns their paths."""
    busybox = write_oci_archive(os.path.join(work, 'busybox.oci.tar'), BUSYBOX_IMAGE,
                                make_rootfs(os.path.join(work, 'busybox-rootfs')),
                                {'Env': ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
                                 'Cmd': ['sh']})
    pause_root = os.path.join(work, 'pause-rootfs')
    os.makedirs(pause_root, exist_ok=True)
    shutil.copy2(pause_binary, os.path.join(pause_root, 'pause'))
    pause = write_oci_archive(os.path.join(work, 'pause.oci.tar'), PAUSE_IMAGE, pause_root,
                              {'Entrypoint': ['/pause']})
    return busybox, pause


# ---- the pod network ----

def _used_networks():
    out = json.loads(sh('ip', '-j', '-4', 'addr').stdout or '[]')
    nets = [ipaddress.ip_network(f'{a["local"]}/{a["prefixlen"]}', strict=False)
            for link in out for a in link.get('addr_info', [])]
    for line in sh('ip', '-4', 'route').stdout.splitlines():
        dst = line.split()[0]
        if dst != 'default':
            nets.append(ipaddress.ip_network(dst, strict=False))
    return nets


def pick_subnet():
    """A /24 in 10.209.0.0/16 that no address or route of the host overlaps,
    starting from one derived from our pid, so that concurrent runs differ."""
    used = _used_networks()
    for i in range(256):
        net = ipaddress.ip_network(f'10.209.{(os.getpid() + i) % 256}.0/24')
        if not any(net.overlaps(u) for u in used):
            return net
    raise Unavailable('no free /24 in 10.209.0.0/16 for the pod network')


def link_exists(name):
    return os.path.exists(f'/sys/class/net/{name}')


def remove_cgroup_parents(parent):
    """A pod's cgroup directories are the kubelet's to remove, not
    containerd's: remove them as a kubelet would, deepest first."""
    for _, mnt in cgroup_mounts():
        path = mnt + parent
        while len(path) > len(mnt) and os.path.isdir(path):
            try:
                os.rmdir(path)
            except OSError:
                break
            path = os.path.dirname(path)


# ---- containerd ----

def runtime_entry(name, binary, root):
    # The pod annotations docs/kubernetes.md has the VM handler pass on.
    return (f'    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}]\n'
            f'      runtime_type = "io.containerd.runc.v2"\n'
            f'      pod_annotations = ["{POD_ANNOTATIONS}"]\n'
            f'      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}.options]\n'
            f'        BinaryName = "{binary}"\n'
            f'        Root = "{root}"\n')


class Containerd:
    def __init__(self, work, handlers, pause_binary):
        """handlers: {name: runtime binary}; runs as root."""
        for tool in TOOLS:
            if not shutil.which(tool):
                raise Unavailable(f'{tool} is not installed')
        if not os.path.exists(os.path.join(CNI_BIN, 'bridge')):
            raise Unavailable(f'the CNI plugins are not installed ({CNI_BIN}/bridge)')
        self.dir = work
        self.sock = os.path.join(work, 'containerd.sock')
        self.handlers = dict(handlers)
        self.runtime_roots = {n: os.path.join(work, 'runtime-state', n) for n in self.handlers}
        self.bridge = f'cascri{os.getpid() % 1000000}'
        self.subnet = pick_subnet()
        self.proc = None
        self.channel = None
        self.log_path = os.path.join(work, 'containerd.log')
        self._write_cni()
        self._write_config()
        try:
            self._start()
            busybox, pause = build_images(work, pause_binary)
            for archive in (busybox, pause):
                self.ctr('images', 'import', archive)
        except BaseException:
            self.close()
            raise

    def _write_cni(self):
        self.cni_dir = os.path.join(self.dir, 'cni')
        os.makedirs(self.cni_dir, exist_ok=True)
        gateway = str(next(self.subnet.hosts()))
        conf = {'cniVersion': '0.4.0', 'name': 'casulo-cri-test', 'plugins': [{
            'type': 'bridge', 'bridge': self.bridge, 'isGateway': True, 'ipMasq': False, 'hairpinMode': True,
            'ipam': {'type': 'host-local', 'ranges': [[{'subnet': str(self.subnet), 'gateway': gateway}]],
                     'routes': [{'dst': '0.0.0.0/0'}], 'dataDir': os.path.join(self.dir, 'ipam')}}]}
        with open(os.path.join(self.cni_dir, '10-casulo-cri-test.conflist'), 'w') as f:
            json.dump(conf, f, indent=1)

    def _write_config(self):
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        text = (f'version = 2\nroot = "{self.dir}/root"\nstate = "{self.dir}/state"\n'
                'disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",\n'
                '  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",\n'
                '  "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]\n'
                f'[grpc]\n  address = "{self.sock}"\n'
                f'[{cri}]\n'
                f'  sandbox_image = "{PAUSE_IMAGE}"\n'
                # Network namespaces under our state directory, not /var/run/netns.
                '  netns_mounts_under_state_dir = true\n'
                # This host's root lacks CAP_SYS_RESOURCE: the pause container's
                # default oom_score_adj (-998) below containerd's own is refused.
                '  restrict_oom_score_adj = true\n'
                f'  [{cri}.cni]\n    bin_dir = "{CNI_BIN}"\n    conf_dir = "{self.cni_dir}"\n'
                f'  [{cri}.containerd]\n    snapshotter = "overlayfs"\n'
                f'    default_runtime_name = "{next(iter(self.handlers))}"\n')
        for name, binary in self.handlers.items():
            text += runtime_entry(name, binary, self.runtime_roots[name])
        self.config_path = os.path.join(self.dir, 'config.toml')
        with open(self.config_path, 'w') as f:
            f.write(text)

    def _start(self):
        self.log = open(self.log_path, 'w')
        self.proc = subprocess.Popen(['containerd', '--config', self.config_path], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 30
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.time() > deadline:
                raise Unavailable(f'containerd did not start: {self.log_tail()}')
            time.sleep(0.02)
        self.channel = grpc.insecure_channel('unix://' + self.sock)
        self.runtime = pb_grpc.RuntimeServiceStub(self.channel)
        self.images = pb_grpc.ImageServiceStub(self.channel)
        while True:
            try:
                conds = {c.type: c for c in self.runtime.Status(pb.StatusRequest(), timeout=5).status.conditions}
                if all(c.status for c in conds.values()) and 'NetworkReady' in conds:
                    return
                why = '; '.join(f'{c.type}: {c.reason} {c.message}' for c in conds.values() if not c.status)
            except grpc.RpcError as e:
                why = e.details()
            if self.proc.poll() is not None or time.time() > deadline:
                raise Unavailable(f'containerd\'s CRI is not ready: {why}; {self.log_tail()}')
            time.sleep(0.05)

    def log_tail(self, n=1500):
        try:
            with open(self.log_path) as f:
                return f.read()[-n:]
        except OSError:
            return ''

    def log_errors(self, word):
        """containerd's error lines that mention word (e.g. a container id)."""
        with open(self.log_path) as f:
            return [line for line in f if 'level=error' in line and word in line]

    def ctr(self, *args, **kw):
        return sh('ctr', '--address', self.sock, '--namespace', NAMESPACE, *args, **kw)

    # ---- pods and containers ----

    def pod_config(self, name, cgroup_parent=None, log_dir=None, security=None, hostname=None, annotations=None):
        uid = f'{name}-{os.getpid()}'
        log_dir = log_dir or os.path.join(self.dir, 'logs', uid)
        os.makedirs(log_dir, exist_ok=True)
        linux = pb.LinuxPodSandboxConfig(cgroup_parent=cgroup_parent or '', security_context=security)
        return pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace='casulo-test'),
                                   hostname=hostname or name, log_directory=log_dir, linux=linux,
                                   annotations=annotations or {})

    def run_pod(self, config, handler):
        return self.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config, runtime_handler=handler),
                                          timeout=120).pod_sandbox_id

    def pod_status(self, pod_id, verbose=False):
        return self.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=verbose),
                                             timeout=30)

    def stop_pod(self, pod_id):
        self.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)

    def remove_pod(self, pod_id):
        self.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)

    def create_container(self, pod_id, pod_config, name, args, image=BUSYBOX_IMAGE, resources=None, security=None,
                         envs=None, mounts=None, tty=False):
        config = pb.ContainerConfig(tty=tty,
            metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=image), args=args,
            envs=[pb.KeyValue(key=k, value=v) for k, v in (envs or {}).items()], mounts=mounts or [],
            log_path=f'{name}.log', linux=pb.LinuxContainerConfig(resources=resources, security_context=security))
        return self.runtime.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=config, sandbox_config=pod_config), timeout=120).container_id

    def start_container(self, cid):
        self.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=120)

    def container_status(self, cid, verbose=False):
        return self.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=cid, verbose=verbose), timeout=30)

    def stop_container(self, cid, timeout):
        self.runtime.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=timeout), timeout=timeout + 60)

    def remove_container(self, cid):
        self.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=60)

    def exec_sync(self, cid, cmd, timeout=0):
        return self.runtime.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=timeout),
                                     timeout=(timeout or 60) + 30)

    def wait_exited(self, cid, timeout=30):
        deadline = time.time() + timeout
        while True:
            st = self.container_status(cid).status
            if st.state == pb.CONTAINER_EXITED:
                return st
            if time.time() > deadline:
                raise AssertionError(f'container {cid[:12]}: state {pb.ContainerState.Name(st.state)} after {timeout}s')
            time.sleep(0.02)

    def remove_all_pods(self):
        for pod in self.runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30).items:
            try:
                self.stop_pod(pod.id)
                self.remove_pod(pod.id)
            except grpc.RpcError as e:
                print(f'# removing pod {pod.id[:12]}: {e.details()}', flush=True)

    def close(self):
        if self.proc and self.proc.poll() is None:
            if self.channel:
                try:
                    self.remove_all_pods()
                except grpc.RpcError:
                    pass
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.channel:
            self.channel.close()
        if link_exists(self.bridge):
            sh('ip', 'link', 'delete', self.bridge, check=False)
        if getattr(self, 'log', None):
            self.log.close()
        # A snapshot or sandbox mount that containerd left would keep rmtree
        # from emptying the directory: lazily detach whatever is left under it.
        with open('/proc/self/mountinfo') as f:
            left = [line.split()[4] for line in f if line.split()[4].startswith(self.dir + '/')]
        for mnt in sorted(left, key=len, reverse=True):
            sh('umount', '-l', mnt, check=False)
