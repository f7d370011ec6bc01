"""A real OpenSSH server (Debian's ``openssh-server``) on a loopback port, for the SFTP tests.

Nothing is installed at test time: ``.ci/run`` (``scripts/test.sh``) installs the package.
The fixture makes a throwaway host key and client key, a system user ``iostest`` (created
if missing, with a fixed password, no shell: ``ForceCommand internal-sftp``), and runs
``sshd -D`` with its own config: loopback only, password and key auth, keys and logs in a
temporary directory. Tests get a directory of their own, owned by that user, from
``directory()``; it is served under its real absolute path (no chroot).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SSHD = "/usr/sbin/sshd"
USER = "iostest"
PASSWORD = "ios-sftp-test-pass"  # fixed, so concurrent test sessions agree on it


@dataclass(frozen=True)
class Sshd:
    port: int
    pid: int
    host_key: str  # the server's public key as in known_hosts: "ssh-ed25519 AAAA..."
    client_key: str = field(repr=False)  # an authorized private key of USER (OpenSSH PEM)
    root: Path
    host: str = "127.0.0.1"
    username: str = USER
    password: str = field(default=PASSWORD, repr=False)

    def directory(self, name: str) -> Path:
        """A fresh directory that USER owns, under ``root``."""
        path = self.root / name
        path.mkdir()
        account = pwd.getpwnam(USER)
        os.chown(path, account.pw_uid, account.pw_gid)
        return path

    def drop_connections(self) -> None:
        """End every open SSH session (the per-connection children of the server), as a
        server restart or a network cut would."""
        found = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True)
        for child in found.stdout.split():
            os.kill(int(child), signal.SIGTERM)

    def config(self, **extra: object) -> dict[str, object]:
        """A connector config for this server, its host key pinned."""
        return {"host": self.host, "port": self.port, "hostKey": self.host_key, **extra}


def openssh_private(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption()).decode()


def openssh_public(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


def _ensure_user() -> None:
    try:
        pwd.getpwnam(USER)
        return
    except KeyError:
        pass
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                   check=False, capture_output=True)  # a concurrent session may win the race
    subprocess.run(["chpasswd"], input=f"{USER}:{PASSWORD}".encode(), check=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _penalties_option() -> str:
    """OpenSSH 9.8+ blocks a source address after failed logins; the tests fail some."""
    version = subprocess.run([SSHD, "-V"], capture_output=True, text=True).stderr
    found = re.search(r"OpenSSH_(\d+)\.(\d+)", version)
    newer = found is not None and (int(found[1]), int(found[2])) >= (9, 8)
    return "PerSourcePenalties no\n" if newer else ""


def _wait_for_banner(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"sshd did not start: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def sshd() -> Iterator[Sshd]:
    if not os.access(SSHD, os.X_OK):
        pytest.fail(f"{SSHD} is missing: install openssh-server (.ci/run and scripts/test.sh "
                    "do it)")
    _ensure_user()
    root = Path(tempfile.mkdtemp(prefix="ios-sshd-"))
    root.chmod(0o755)  # USER must reach the directories under it
    host_key, client_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    keys = root / "keys"
    keys.mkdir(mode=0o700)
    (keys / "host_ed25519").write_text(openssh_private(host_key))
    (keys / "host_ed25519").chmod(0o600)
    authorized = root / "authorized_keys"  # read by sshd as USER: outside the private keys/
    authorized.write_text(openssh_public(client_key) + "\n")
    port, log = _free_port(), keys / "sshd.log"
    (keys / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host_ed25519'}\n"
        f"PidFile {keys / 'sshd.pid'}\nAuthorizedKeysFile {authorized}\n"
        "PasswordAuthentication yes\nPubkeyAuthentication yes\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin no\n"
        f"AllowUsers {USER}\nSubsystem sftp internal-sftp\nForceCommand internal-sftp\n"
        "MaxStartups 50\nLogLevel VERBOSE\n" + _penalties_option()
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    process = subprocess.Popen([SSHD, "-D", "-f", str(keys / "sshd_config"), "-E", str(log)])
    try:
        _wait_for_banner(port, process, log)
        yield Sshd(port, process.pid, openssh_public(host_key), openssh_private(client_key),
                   root)
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(root, ignore_errors=True)
