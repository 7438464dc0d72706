"""A server installed without Mercurial (a Python environment that lacks it, not a flag)
still starts, keeps and serves git, and says plainly that hg repositories need Mercurial."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import scratch_database, server_url
from tests.e2e.test_git_serving import git, rpc
from tests.hgremotes import HgUpstream
from tests.server_process import ServerProcess

#: What the ``mercurial`` distribution installs at the top of site-packages.
MERCURIAL_PARTS = ("mercurial", "hgext", "hgext3rd", "hgdemandimport")


def environment_without_mercurial(target: Path) -> Path:
    """A virtual environment holding everything of ours but Mercurial; its bin directory."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True)
    ours = Path(sysconfig.get_paths()["purelib"])
    (site,) = target.glob("lib/python*/site-packages")
    for entry in ours.iterdir():
        if entry.name.split("-")[0] in MERCURIAL_PARTS:
            continue
        if not (site / entry.name).exists():
            (site / entry.name).symlink_to(entry)
    script = target / "bin" / "rpcserver"
    script.write_text(f"#!{target / 'bin' / 'python'}\n"
                      "from rpcserver.admin.cli import main\nmain()\n")
    script.chmod(0o755)
    return target / "bin"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("no-hg")
    bin_dir = environment_without_mercurial(base / "venv")
    found = subprocess.run([str(bin_dir / "python"), "-c", "import mercurial"],
                           capture_output=True, text=True)
    assert "No module named 'mercurial'" in found.stderr  # the premise of every test here
    with scratch_database(base, "nohg", server_url()) as url:
        process = ServerProcess(instance=base / "instance", database_url=url,
                                bin=bin_dir).start()
        try:
            yield process
        finally:
            process.stop()


def test_it_starts_and_says_why_hg_is_unavailable(server: ServerProcess) -> None:
    assert ("warning: hg repositories cannot be used: Mercurial was not found in the "
            "server's Python" in server.read_log())
    info = rpc(server, "get_server_info")
    assert info["git_version"]
    assert "mercurial" not in dict(info["modules"])


def test_git_is_kept_and_served(server: ServerProcess, tmp_path: Path) -> None:
    rpc(server, "create_repo", repo_name="plain-git")
    work = tmp_path / "work"
    git(tmp_path, "init", "-q", str(work), check=True)
    (work / "README").write_text("hello\n")
    git(tmp_path, "add", "README", cwd=work, check=True)
    git(tmp_path, "commit", "-q", "-m", "first", cwd=work, check=True)
    url = server.url.replace("http://", f"http://admin:{server.admin_key}@") + "/plain-git"
    git(tmp_path, "push", "-q", url, "HEAD:refs/heads/master", cwd=work, check=True)
    git(tmp_path, "clone", "-q", url, str(tmp_path / "copy"), check=True)
    assert (tmp_path / "copy" / "README").read_text() == "hello\n"
    assert rpc(server, "get_repo", repoid="plain-git")["last_changeset"]["message"] == "first\n"


def test_hg_methods_answer_what_to_install(server: ServerProcess) -> None:
    answer = server.call("create_repo", repo_name="wants-hg", repo_type="hg")
    assert answer["result"] is None
    assert answer["error"] == (
        "This server cannot keep hg repositories: Mercurial was not found in the server's "
        "Python; rpcserver keeps hg repositories with it (pip install 'mercurial>=6.4', "
        "which `make install` does)")
    assert server.call("get_repo", repoid="wants-hg")["error"] == (
        "repository `wants-hg` does not exist")


def test_rescan_skips_hg_repositories_it_cannot_read(server: ServerProcess) -> None:
    HgUpstream(server.instance / "repos" / "found-hg").commit(1)
    answer = rpc(server, "rescan_repos")
    assert "found-hg" not in answer["added"]
    assert "cannot read found-hg" in server.read_log()
    assert server.call("get_repo", repoid="found-hg")["error"] == (
        "repository `found-hg` does not exist")
