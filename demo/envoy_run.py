"""Builds Envoy bootstraps that load the llm-warden .wasm, and runs Envoy from the
project-local venv."""
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "llm_warden.wasm"
ENVOY = ROOT / ".venv" / "bin" / "envoy"
AUDIT_KEY = "llm_warden.audit"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cluster(name: str, host: str, port: int) -> dict:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}]}]},
    }


def wasm_filter(plugin_config: dict, name: str = "llm-warden", vm_id: str = "llm-warden",
                stop_iteration: bool = True, disabled: bool = False, env: dict | None = None,
                host_env_keys: list | None = None) -> dict:
    """`env` values travel in the config (`key_values`: printed by the admin /config_dump);
    `host_env_keys` names variables the VM reads from Envoy's own environment (see Envoy(env=)),
    so only the names are in the config: the way to pass secrets."""
    f = {
        "name": name,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": "llm-warden",
                "vm_config": {
                    "vm_id": vm_id,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": str(WASM)}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": json.dumps(plugin_config),
                },
                "failure_policy": "FAIL_CLOSED",
                # Envoy >= 1.35: a Pause from on_request_headers holds the headers while body
                # callbacks still run (needed to read the model before routing upstream).
                "allow_on_headers_stop_iteration": stop_iteration,
            },
        },
    }
    if disabled:
        f["disabled"] = True
    if env or host_env_keys:
        # Secrets reach the VM through the environment, never through the plugin config.
        variables = f["typed_config"]["config"]["vm_config"]["environment_variables"] = {}
        if env:
            variables["key_values"] = env
        if host_env_keys:
            variables["host_env_keys"] = list(host_env_keys)
    return f


def listener(plugin_config: dict, listen_port: int, access_log: str | None = None) -> dict:
    return bootstrap(plugin_config, listen_port, 0, ("127.0.0.1", 1), None, access_log)[
        "static_resources"]["listeners"][0]


def write_lds(path: Path, listener_config: dict):
    """Atomically replaces a file-based LDS resource; Envoy watches the directory for moves."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"resources": [
        {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", **listener_config}]}))
    os.replace(tmp, path)


def with_file_lds(config: dict, lds_path: Path) -> dict:
    """Moves the bootstrap's listener into a watched LDS file, so tests can update it live."""
    listeners = config["static_resources"].pop("listeners")
    write_lds(lds_path, listeners[0])
    config["dynamic_resources"] = {"lds_config": {"resource_api_version": "V3", "path_config_source": {
        "path": str(lds_path), "watched_directory": {"path": str(lds_path.parent)}}}}
    config["node"] = {"id": "llm-warden-test", "cluster": "llm-warden-test"}
    return config


DEFAULT_ROUTES = [{"name": "inference", "match": {"prefix": "/"}, "route": {"cluster": "llm_upstream", "timeout": "60s"}}]

# The HCM options every shipped Envoy YAML sets (tests/test_envoy_yaml.py checks them): Envoy
# normalises the path and refuses escaped slashes and header names with underscores before any
# filter runs. The filter must be safe without them too; tests run both ways.
HARDENED_HCM = {
    "normalize_path": True,
    "merge_slashes": True,
    "path_with_escaped_slashes_action": "REJECT_REQUEST",
    "common_http_protocol_options": {"headers_with_underscores_action": "REJECT_REQUEST"},
}

_UPSTREAM_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def upstream_protocol(explicit_http_config: dict) -> dict:
    """typed_extension_protocol_options for a cluster, e.g. `{"http2_protocol_options": {}}`
    (h2c upstream) or `{"http_protocol_options": {"enable_trailers": True}}`."""
    return {_UPSTREAM_HTTP_OPTIONS: {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": explicit_http_config}}


def bootstrap(plugin_config: dict, listen_port: int, admin_port: int, upstream: tuple[str, int],
              jwks: tuple[str, int] | None, access_log: str | None = None, routes: list | None = None,
              filters: list | None = None, stop_iteration: bool = True, hcm_options: dict | None = None,
              upstream_http: dict | None = None) -> dict:
    """`hcm_options` are merged into the HttpConnectionManager (e.g. HARDENED_HCM, or
    `{"http_protocol_options": {"enable_trailers": True}}`); `upstream_http` is the upstream
    cluster's explicit_http_config (see upstream_protocol). Both default to Envoy's defaults."""
    access = []
    if access_log:
        access.append({
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": access_log,
                "log_format": {"text_format_source": {
                    "inline_string": f"%RESPONSE_CODE% %FILTER_STATE(wasm.{AUDIT_KEY}:PLAIN)%\n"}},
            },
        })
    clusters = [_cluster("llm_upstream", *upstream)]
    if upstream_http is not None:
        clusters[0]["typed_extension_protocol_options"] = upstream_protocol(upstream_http)
    if jwks:
        clusters.append(_cluster("jwks", *jwks))
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{
                "name": "llm",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen_port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "llm",
                        "access_log": access,
                        "route_config": {"name": "llm", "virtual_hosts": [{
                            "name": "llm", "domains": ["*"],
                            "routes": routes or DEFAULT_ROUTES}]},
                        "http_filters": [
                            *(filters if filters is not None else [wasm_filter(plugin_config, stop_iteration=stop_iteration)]),
                            {"name": "envoy.filters.http.router", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
                        ],
                        **(hcm_options or {}),
                    },
                }]}],
            }],
            "clusters": clusters,
        },
    }


def port_of(config: dict) -> int:
    listeners = config["static_resources"].get("listeners")
    if listeners:
        return listeners[0]["address"]["socket_address"]["port_value"]
    lds = json.loads(Path(config["dynamic_resources"]["lds_config"]["path_config_source"]["path"]).read_text())
    return lds["resources"][0]["address"]["socket_address"]["port_value"]


_base_ids = iter(range(1000 + (os.getpid() % 1000) * 10, 10**6))


class Envoy:
    def __init__(self, config: dict, workdir: Path, concurrency: int = 2, env: dict | None = None,
                 log_level: str = "info", wasm_log_level: str = "info"):
        """`env` is added to Envoy's process environment (read by host_env_keys);
        `log_level` is Envoy's --log-level, `wasm_log_level` the wasm component's (the filter's)."""
        self.workdir = workdir
        self.config_path = workdir / "envoy.json"
        self.config_path.write_text(json.dumps(config, indent=1))
        self.log_path = workdir / "envoy.log"
        self.admin_port = config["admin"]["address"]["socket_address"]["port_value"]
        self.port = port_of(config)
        self.proc = subprocess.Popen(
            [str(ENVOY), "-c", str(self.config_path), "--base-id", str(next(_base_ids)),
             "--concurrency", str(concurrency), "--log-level", log_level,
             "--component-log-level", f"wasm:{wasm_log_level}", "--file-flush-interval-msec", "200"],
            stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,
            env={**os.environ, **env} if env else None,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"envoy not ready after {timeout}s:\n{self.log()[-4000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_no_trap(self):
        """A panic traps the Wasm VM and Envoy answers 503 until reload: never acceptable."""
        log = self.log()
        assert not has_trap(log), log[-4000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def has_trap(log: str) -> bool:
    return "panicked at" in log or "Uncaught RuntimeError" in log


def validate(config_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(config_path), "--base-id",
                           str(next(_base_ids))], capture_output=True, text=True)
