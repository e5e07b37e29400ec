"""A prosody server of its own for tests and one-machine runs (Debian's package): a
config in a folder of its own, free ports on the loopback, a self-signed certificate,
Kaiwa's authentication module (prosody/mod_auth_kaiwa.lua) and the bridge's component.

    python -m kaiwa_conversation.xmpp.local_prosody   prints the KAIWA_XMPP_* settings
                                                      for the bridge and runs until Ctrl-C
"""

from __future__ import annotations

import datetime
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kaiwa_common.devservers import server_command

MODULES = Path(__file__).resolve().parent / "prosody"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalProsody:
    workdir: Path
    domain: str
    component: str
    secret: str
    auth_url: str
    c2s_port: int = 0
    component_port: int = 0
    proc: subprocess.Popen | None = None

    def start(self, timeout: float = 20) -> "LocalProsody":
        binary = shutil.which("prosody")
        if binary is None:
            raise RuntimeError("prosody is not installed (make setup installs Debian's package)")
        self.c2s_port = self.c2s_port or free_port()
        self.component_port = self.component_port or free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "data").mkdir(exist_ok=True)
        (self.workdir / "modules").mkdir(exist_ok=True)
        shutil.copy(MODULES / "mod_auth_kaiwa.lua", self.workdir / "modules" / "mod_auth_kaiwa.lua")
        key, cert = self._certificate()
        config = self.workdir / "prosody.cfg.lua"
        account = _unprivileged()
        config.write_text(self._config(key, cert, run_as_root=account is None and os.geteuid() == 0))
        if account is not None:  # prosody refuses to run as root: run it as its own user
            for path in [self.workdir, *self.workdir.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid)
        command, user = server_command([binary, "--config", str(config), "-F"], signal.SIGTERM, account and account.pw_name)
        log = open(self.workdir / "prosody.out", "ab")
        self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, user=user)
        deadline = time.monotonic() + timeout
        while not (_listening(self.c2s_port) and _listening(self.component_port)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"prosody did not start: {(self.workdir / 'prosody.log').read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _certificate(self) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.domain)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(self.domain)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        key_path, cert_path = self.workdir / "server.key", self.workdir / "server.crt"
        key_path.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        os.chmod(key_path, 0o600)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return key_path, cert_path

    def _config(self, key: Path, cert: Path, run_as_root: bool) -> str:
        return f"""
run_as_root = {"true" if run_as_root else "false"}
daemonize = false
pidfile = "{self.workdir}/prosody.pid"
data_path = "{self.workdir}/data"
plugin_paths = {{ "{self.workdir}/modules" }}
log = {{ info = "{self.workdir}/prosody.log" }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {self.c2s_port} }}
c2s_interfaces = {{ "127.0.0.1" }}
component_ports = {{ {self.component_port} }}
component_interfaces = {{ "127.0.0.1" }}
modules_enabled = {{ "roster"; "saslauth"; "tls"; "disco"; "ping"; "offline" }}
modules_disabled = {{ "s2s" }}
c2s_require_encryption = true
authentication = "kaiwa"
kaiwa_auth_url = "{self.auth_url}"
kaiwa_auth_secret = "{self.secret}"
storage = "internal"
certificates = "{self.workdir}"
ssl = {{ key = "{key}"; certificate = "{cert}" }}
VirtualHost "{self.domain}"
Component "{self.component}"
    component_secret = "{self.secret}"
"""


def _unprivileged() -> pwd.struct_passwd | None:
    """The account to run prosody as when this process is root (Debian's package makes
    one named prosody), else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("prosody")
    except KeyError:
        return None


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0
