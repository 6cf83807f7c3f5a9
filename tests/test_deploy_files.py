"""Files for users that cannot run here are checked by schema: the compose file against the
compose spec, the Istio WasmPlugin against our schema of the CRD (its pluginConfig against
the plugin-config schema), and a broken WasmPlugin is refused."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / ".venv" / "bin" / "check-jsonschema"


def check(*args):
    return subprocess.run([str(CHECK), *args], capture_output=True, text=True)


def test_compose_file_matches_the_compose_spec():
    out = check("--builtin-schema", "vendor.compose-spec", str(ROOT / "envoy" / "docker-compose.yaml"))
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_pins_envoy_1_40():
    assert "image: envoyproxy/envoy:v1.40-latest" in (ROOT / "envoy" / "docker-compose.yaml").read_text()


def test_istio_wasmplugin_matches_the_crd_schema():
    out = check("--schemafile", str(ROOT / "schema" / "istio-wasmplugin.schema.json"),
                str(ROOT / "istio" / "wasmplugin.yaml"))
    assert out.returncode == 0, out.stdout + out.stderr


def test_broken_wasmplugin_is_refused(tmp_path):
    good = (ROOT / "istio" / "wasmplugin.yaml").read_text()
    for bad in (good.replace("FAIL_CLOSE", "FAIL_CLOSED"),          # Envoy's spelling, not Istio's
                good.replace("audiences: [llm-api]", "audiences: [llm-api]\n      audience: typo"),
                good.replace("  url: oci://", "  uri: oci://")):
        f = tmp_path / "bad.yaml"
        f.write_text(bad)
        out = check("--schemafile", str(ROOT / "schema" / "istio-wasmplugin.schema.json"), str(f))
        assert out.returncode != 0, bad
