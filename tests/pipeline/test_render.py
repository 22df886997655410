"""`pipeline render` mechanics on a small project of the test's own.

The real stacks are rendered in tests/infra/test_render_stacks.py; here a tiny
program exercises redaction, determinism, file naming, atomic output and
error reporting independently of what the real components declare.
"""

from __future__ import annotations

import errno
import json
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from pipeline.render.mocks import forget_shadowed_modules
from pipeline.secrets import SECRET_STAND_IN

PROGRAM = """
import base64

import pulumi
import pulumi_kubernetes as k8s

from infra.config import load

settings = load()
provider = k8s.Provider("k8s", context="kind-test", kubeconfig="~/.kube/config")
opts = pulumi.ResourceOptions(provider=provider)
ns = k8s.core.v1.Namespace(
    "ns",
    metadata={"name": settings["namespace"]},
    opts=pulumi.ResourceOptions(provider=provider, protect=True, retain_on_delete=True),
)
token = pulumi.Config().require_secret("apiToken")
k8s.core.v1.Secret(
    "api",
    metadata={"name": "api", "namespace": settings["namespace"]},
    string_data={"token": token},
    opts=opts,
)
labels = {"app": "demo"}
if settings["leak"]:
    labels["token"] = pulumi.Output.unsecret(token)  # a bug the render must refuse
annotations = {}
if settings["leak64"]:
    # The same bug, the token hidden inside a base64 value (as in a docker config).
    annotations["auth"] = pulumi.Output.unsecret(token).apply(
        lambda t: base64.b64encode(("user:" + t).encode()).decode()
    )
if settings["requireMissing"]:
    pulumi.Config().require("missingKey")


def crash(_):
    raise RuntimeError("crashed\\nsecond line")  # a bug whose message spans lines


if settings["crash"]:
    ns.metadata.apply(crash)
k8s.apps.v1.Deployment(
    "app",
    metadata={"name": "demo", "namespace": settings["namespace"], "labels": {"app": "demo"},
              "annotations": annotations},
    spec={
        "replicas": settings["replicas"],
        "selector": {"matchLabels": {"app": "demo"}},
        "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "demo", "image": "demo@sha256:" + "a" * 64,
                                      "ports": [{"containerPort": 8080}]}]},
        },
    },
    opts=opts,
)
tls_cert = pulumi.Config().get_secret("tlsCert")
if tls_cert is not None:
    k8s.core.v1.Secret(
        "tls",
        metadata={"name": "tls", "namespace": settings["namespace"]},
        string_data={"tls.crt": tls_cert},
        opts=opts,
    )
pulumi.export("namespace", ns.metadata.name)
pulumi.export("apiToken", token)
"""

CONFIG_MODULE = """
import pulumi


class SettingsError(ValueError):
    pass


def load():
    cfg = pulumi.Config()
    raw = cfg.get("replicas") or "1"
    try:
        replicas = int(raw)
    except ValueError:
        raise SettingsError(
            f"cv-platform:replicas must be an integer >= 1, got {raw!r}"
        ) from None
    return {
        "replicas": replicas,
        "namespace": cfg.get("namespace") or "demo",
        "leak": cfg.get_bool("leak") or False,
        "leak64": cfg.get_bool("leak64") or False,
        "requireMissing": cfg.get_bool("requireMissing") or False,
        "crash": cfg.get_bool("crash") or False,
    }
"""

PROJECT_YAML = """\
name: cv-platform
runtime: python
config:
  replicas:
    type: integer
    default: 1
    description: pods
  namespace:
    type: string
    default: demo
    description: namespace
  apiToken:
    type: string
    secret: true
    description: a token
template:
  config:
    tlsCert:
      secret: true
      description: optional; TLS only when set
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "infra").mkdir(parents=True)
    (root / "infra" / "__init__.py").write_text("")
    (root / "infra" / "config.py").write_text(textwrap.dedent(CONFIG_MODULE))
    (root / "__main__.py").write_text(textwrap.dedent(PROGRAM))
    (root / "Pulumi.yaml").write_text(PROJECT_YAML)
    (root / "Pulumi.dev.yaml").write_text(
        "config:\n  cv-platform:replicas: 3\n  cv-platform:namespace: demo-dev\n"
    )
    return root


@pytest.fixture(autouse=True)
def _forget_other_trees_modules(project_root: Path) -> Iterator[None]:
    """After each test, drop the ``infra`` modules a rendered copy left in sys.modules.

    A later test importing ``infra`` must get this project's, not a temporary tree's.
    """
    yield
    forget_shadowed_modules(project_root)


def render(project: Path, out: Path, stack: str = "dev") -> int:
    return main(["--project-dir", str(project), "render", stack, "--out", str(out)])


def tree(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def test_render_writes_one_manifest_per_object(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render(project, out) == 0
    names = sorted(p.name for p in out.glob("*.yaml"))
    assert names == [
        "deployment-demo-dev-demo.yaml",
        "namespace-_cluster-demo-dev.yaml",
        "secret-demo-dev-api.yaml",
    ]
    for path in out.glob("*.yaml"):
        docs = list(yaml.safe_load_all(path.read_text()))
        assert len(docs) == 1
        assert {"apiVersion", "kind", "metadata"} <= set(docs[0])


def test_render_keeps_integers_as_integers(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    render(project, out)
    deployment = yaml.safe_load((out / "deployment-demo-dev-demo.yaml").read_text())
    assert deployment["spec"]["replicas"] == 3
    assert type(deployment["spec"]["replicas"]) is int
    port = deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]
    assert type(port["containerPort"]) is int


def test_render_lists_every_resource_with_type_name_inputs(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    render(project, out)
    resources = json.loads((out / "resources.json").read_text())
    assert [(r["type"], r["name"]) for r in resources] == [
        ("kubernetes:apps/v1:Deployment", "app"),
        ("kubernetes:core/v1:Namespace", "ns"),
        ("kubernetes:core/v1:Secret", "api"),
        ("pulumi:providers:kubernetes", "k8s"),
    ]
    assert all(set(r) == {"type", "name", "inputs", "protect", "retainOnDelete"} for r in resources)


def test_render_records_protect_and_retain_on_delete(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    render(project, out)
    options = {
        r["name"]: (r["protect"], r["retainOnDelete"])
        for r in json.loads((out / "resources.json").read_text())
    }
    assert options["ns"] == (True, True)
    assert options["app"] == (False, False)


def test_render_writes_secrets_as_redacted(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    render(project, out)
    secret = yaml.safe_load((out / "secret-demo-dev-api.yaml").read_text())
    assert secret["stringData"] == {"token": "[secret]"}
    assert json.loads((out / "stack-outputs.json").read_text())["apiToken"] == "[secret]"
    for content in tree(out).values():
        assert SECRET_STAND_IN.encode() not in content


def test_two_renders_are_byte_identical(project: Path, tmp_path: Path) -> None:
    render(project, tmp_path / "a")
    render(project, tmp_path / "b")
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_render_replaces_an_earlier_render_with_what_it_wrote(
    project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    render(project, out)
    marker = json.loads((out / ".cv-platform-render").read_text())
    assert marker["kind"] == "cv-platform render"
    assert marker["files"] == sorted(
        p.name for p in out.iterdir() if p.name != ".cv-platform-render"
    )
    # An object an earlier render wrote (its marker lists it) that this render has not.
    (out / "deployment-demo-dev-stale.yaml").write_text("kind: Deployment\n")
    marker["files"] = sorted([*marker["files"], "deployment-demo-dev-stale.yaml"])
    (out / ".cv-platform-render").write_text(json.dumps(marker))
    assert render(project, out) == 0
    assert not (out / "deployment-demo-dev-stale.yaml").exists()


def test_render_refuses_a_directory_that_is_not_a_render(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert render(project, out) == 1
    assert "was not written by `pipeline render`" in capsys.readouterr().err
    assert tree(out) == {"notes.txt": b"keep me"}


def test_render_refuses_a_directory_with_a_resources_json_but_no_marker(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What used to pass for a render: the directory lost precious.txt.
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    (out / "resources.json").write_text("[]")
    assert render(project, out) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "no .cv-platform-render marker" in err
    assert tree(out) == {"precious.txt": b"keep me", "resources.json": b"[]"}


@pytest.mark.parametrize(
    "added", ["precious.txt", ".hidden", "subdir"], ids=["file", "dotfile", "directory"]
)
def test_render_refuses_an_earlier_render_someone_added_files_to(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], added: str
) -> None:
    out = tmp_path / "out"
    render(project, out)
    if added == "subdir":
        (out / added).mkdir()
    else:
        (out / added).write_text("keep me")
    before = sorted(p.name for p in out.iterdir())
    capsys.readouterr()
    assert render(project, out) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert f"holds files the render did not write ({added})" in err
    assert sorted(p.name for p in out.iterdir()) == before


@pytest.mark.parametrize(
    "marker",
    [
        "not json",
        '["a list"]',
        '{"kind": "something else", "files": []}',
        '{"kind": "cv-platform render"}',
    ],
)
def test_a_marker_that_is_not_a_renders_is_no_marker(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], marker: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / ".cv-platform-render").write_text(marker)
    assert render(project, out) == 1
    assert "was not written by `pipeline render`" in capsys.readouterr().err


def test_config_error_exits_1_with_the_programs_message_and_writes_nothing(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "Pulumi.dev.yaml").write_text("config:\n  cv-platform:replicas: three\n")
    out = tmp_path / "out"
    assert render(project, out) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cv-platform:replicas must be an integer >= 1, got 'three'" in err
    assert not out.exists()


def test_render_refuses_a_secret_that_reaches_a_plain_input(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "Pulumi.dev.yaml").write_text("config:\n  cv-platform:leak: true\n")
    out = tmp_path / "out"
    assert render(project, out) == 1
    err = capsys.readouterr().err
    assert "secret value reached a plain input of kubernetes:apps/v1:Deployment 'app'" in err
    assert SECRET_STAND_IN not in err
    assert not out.exists()


def test_unknown_stack_exits_1_naming_the_known_stacks(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render(project, tmp_path / "out", stack="qa") == 1
    err = capsys.readouterr().err
    assert "unknown stack 'qa'" in err
    assert "stacks: dev" in err


def test_malformed_stack_file_exits_1_naming_file_and_line(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "Pulumi.dev.yaml").write_text("config:\n  cv-platform:replicas: [3\n")
    assert render(project, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "Pulumi.dev.yaml:3: malformed YAML" in err
    assert err.count("\n") == 1


def test_render_refuses_a_secret_hidden_in_a_base64_value(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "Pulumi.dev.yaml").write_text("config:\n  cv-platform:leak64: true\n")
    out = tmp_path / "out"
    assert render(project, out) == 1
    assert "secret value reached a plain input" in capsys.readouterr().err
    assert not out.exists()


def test_a_missing_required_key_is_one_line_naming_it(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "Pulumi.dev.yaml").write_text("config:\n  cv-platform:requireMissing: true\n")
    out = tmp_path / "out"
    assert render(project, out) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cv-platform:missingKey" in err
    assert "internal error" not in err
    assert not out.exists()


def test_a_wrong_out_is_refused_before_the_program_runs(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The config is broken too: the --out error shows the program never ran.
    (project / "Pulumi.dev.yaml").write_text("config:\n  cv-platform:replicas: three\n")
    out = tmp_path / "file"
    out.write_text("not a directory")
    assert render(project, out) == 1
    err = capsys.readouterr().err
    assert "exists and is not a directory" in err
    assert out.read_text() == "not a directory"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_an_unwritable_out_is_one_line_naming_out(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # /proc takes no new directories, even from root (a chmod would not stop root).
    out = Path("/proc/cv-platform-render")
    enoent = os.strerror(errno.ENOENT)
    assert render(project, out) == 1
    err = capsys.readouterr().err
    assert err == f"python -m pipeline render: error: --out {out}: cannot write: {enoent}\n"


def test_a_failed_swap_keeps_the_earlier_render_and_leaves_no_temporary_directory(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert render(project, out) == 0
    before = tree(out)
    real_rename = Path.rename

    def rename(self: Path, target: str | Path) -> Path:
        staged = self.name.startswith(".out.") and not self.name.endswith(".previous")
        if Path(target) == out.resolve() and staged:
            raise OSError(28, "No space left on device")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    (project / "Pulumi.dev.yaml").write_text("config:\n  cv-platform:replicas: 5\n")
    assert render(project, out) == 1
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "proj"]


def test_an_undeclared_key_renders_with_a_warning_naming_it(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "Pulumi.dev.yaml").write_text("config:\n  cv-platform:replica: 5\n")
    assert render(project, tmp_path / "out") == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "warning: Pulumi.dev.yaml sets cv-platform:replica, which Pulumi.yaml does not "
        "declare: the program ignores it (a typo?)"
    ]


def test_declared_keys_render_without_a_warning(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render(project, tmp_path / "out") == 0
    assert capsys.readouterr().err == ""


def test_a_program_that_crashes_exits_1_with_one_line(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "Pulumi.dev.yaml").write_text("config:\n  cv-platform:crash: true\n")
    out = tmp_path / "out"
    assert render(project, out) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "internal error: RuntimeError: crashed second line" in err
    assert not out.exists()


def test_an_optional_secret_the_stack_does_not_set_stays_unset(
    project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert render(project, out) == 0
    assert not (out / "secret-demo-dev-tls.yaml").exists()


def test_an_optional_secret_the_stack_sets_is_rendered_redacted(
    project: Path, tmp_path: Path
) -> None:
    with (project / "Pulumi.dev.yaml").open("a") as stack_file:
        stack_file.write("  cv-platform:tlsCert:\n    secure: v1:AAAAbase64ciphertext\n")
    out = tmp_path / "out"
    assert render(project, out) == 0
    secret = yaml.safe_load((out / "secret-demo-dev-tls.yaml").read_text())
    assert secret["stringData"] == {"tls.crt": "[secret]"}


def test_render_names_the_required_secrets_the_stack_file_does_not_set(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render(project, tmp_path / "out") == 0
    out = capsys.readouterr().out
    assert "secrets this stack needs" in out
    assert "apiToken" in out
    assert "tlsCert" not in out
