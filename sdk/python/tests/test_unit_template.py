"""Unit tests (no VM): the Python Template builder makes the recipe JSON the daemon's schema declares
(checked against the committed OpenAPI document), hashes copied files by content, refuses hostile
or oversized copies before anything is sent, uploads only what the daemon lacks, and follows the
build job to its result or its typed error.
"""
import hashlib
import os
import tempfile
import unittest
from typing import Any, Dict, List

import _support  # noqa: F401  (puts the SDK on sys.path)
import forkd
from forkd.template import _T
from test_unit_routes import OPENAPI, RecordingTransport, _check


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def body_schema() -> Dict[str, Any]:
    return OPENAPI["paths"]["/v1/templates"]["post"]["requestBody"]["content"]["application/json"]["schema"]


class RecipeMappingTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="forkd-py-tpl-")
        os.makedirs(os.path.join(self.dir, "app", "lib"))
        with open(os.path.join(self.dir, "app", "index.html"), "wb") as f:
            f.write(b"<title>x</title>\n")
        with open(os.path.join(self.dir, "app", "lib", "tool.sh"), "wb") as f:
            f.write(b"#!/bin/sh\necho ok\n")
        os.chmod(os.path.join(self.dir, "app", "lib", "tool.sh"), 0o755)

    def tearDown(self) -> None:
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)

    def test_every_builder_call_maps_to_its_step_and_the_recipe_fits_the_schema(self) -> None:
        t = (
            forkd.Template()
            .from_template("python")
            .apt_install(["python3-numpy", "curl"])
            .pip_install("/opt/wheels/pkg-1.0-py3-none-any.whl", network=False)
            .npm_install("lodash@4", g=False, network=False)
            .copy(os.path.join(self.dir, "app"), "/srv/app")
            .copy(b"raw bytes", "/etc/raw.txt", mode=0o600)
            .run_cmd("make -C /srv/app", user="user", timeout_secs=60)
            .run_cmd(["echo", "argv"])
            .set_envs({"APP_MODE": "prod"})
            .set_workdir("/srv/app")
            .set_start_cmd("python3 -m http.server 8080", forkd.wait_for_port(8080), timeout_secs=60)
            .set_ready_cmd(forkd.wait_for_url("http://127.0.0.1:8080/"))
            .set_resources(disk_mib=2048, mem_mib=768, min_mem_mib=256)
        )
        recipe, files = t.to_recipe("my-tpl")
        self.assertEqual([s["type"] for s in recipe["steps"]], ["apt", "pip", "npm", "copy", "copy", "run", "run", "env", "workdir"])
        self.assertEqual(recipe["from"], "python")
        self.assertEqual(recipe["language"], "python", "pip implies a python interpreter")
        self.assertEqual(recipe["steps"][1], {"type": "pip", "packages": ["/opt/wheels/pkg-1.0-py3-none-any.whl"], "network": False})
        self.assertEqual(recipe["steps"][2], {"type": "npm", "packages": ["lodash@4"], "global": False, "network": False})
        html, tool = b"<title>x</title>\n", b"#!/bin/sh\necho ok\n"
        self.assertEqual(recipe["steps"][3]["files"], [
            {"sha256": sha(html), "dest": "/srv/app/index.html", "mode": 0o644 & os.stat(os.path.join(self.dir, "app", "index.html")).st_mode},
            {"sha256": sha(tool), "dest": "/srv/app/lib/tool.sh", "mode": 0o755},
        ])
        self.assertEqual(recipe["steps"][4]["files"], [{"sha256": sha(b"raw bytes"), "dest": "/etc/raw.txt", "mode": 0o600}])
        self.assertEqual(recipe["steps"][5], {"type": "run", "cmd": "make -C /srv/app", "network": False, "user": "user", "timeout_secs": 60})
        self.assertEqual(recipe["steps"][6]["cmd"], ["echo", "argv"])
        self.assertEqual(recipe["services"], [{"name": "start", "start": "python3 -m http.server 8080", "ready": {"url": "http://127.0.0.1:8080/"}, "timeout_secs": 60}])
        self.assertEqual((recipe["disk_mib"], recipe["default_mem_mib"], recipe["min_mem_mib"]), (2048, 768, 256))
        self.assertEqual(set(files), {sha(html), sha(tool), sha(b"raw bytes")})
        self.assertEqual(files[sha(tool)], tool)
        self.assertEqual(_check(body_schema(), {"tag": "my-tpl", "template": recipe}, "body"), [])

    def test_from_debian_and_the_ready_checks(self) -> None:
        recipe, files = forkd.Template().from_debian().run_cmd("true").set_start_cmd(["sleep", "infinity"], forkd.wait_for_process("sleep")).to_recipe("t")
        self.assertNotIn("from", recipe)
        self.assertEqual(files, {})
        self.assertEqual(recipe["services"][0]["ready"], {"cmd": "pgrep -x sleep >/dev/null"})
        self.assertEqual(forkd.Template().set_start_cmd("x", "test -e /ready").to_recipe("t")[0]["services"][0]["ready"], {"cmd": "test -e /ready"})
        self.assertEqual(forkd.wait_for_file("/tmp/r"), {"file": "/tmp/r"})
        self.assertEqual(_check(body_schema(), {"tag": "t", "template": recipe}, "body"), [])

    def test_same_bytes_same_digest_whatever_the_path(self) -> None:
        other = os.path.join(self.dir, "elsewhere.html")
        with open(other, "wb") as f:
            f.write(b"<title>x</title>\n")
        a = forkd.Template().copy(os.path.join(self.dir, "app", "index.html"), "/a").to_recipe("t")[0]["steps"][0]["files"][0]["sha256"]
        b = forkd.Template().copy(other, "/a").to_recipe("t")[0]["steps"][0]["files"][0]["sha256"]
        self.assertEqual(a, b)

    def test_bad_calls_are_refused_with_their_code(self) -> None:
        with self.assertRaises(forkd.InvalidArgumentError):
            forkd.Template().set_ready_cmd(forkd.wait_for_port(1))
        with self.assertRaises(forkd.InvalidArgumentError):
            forkd.wait_for_timeout(5)
        with self.assertRaises(forkd.InvalidArgumentError):
            forkd.Template().set_language("ruby")
        with self.assertRaises(forkd.InvalidArgumentError):
            forkd.Template().set_start_cmd("x", {"port": 1, "url": "y"})
        with self.assertRaises(forkd.InvalidArgumentError) as cm:
            forkd.Template().copy(os.path.join(self.dir, "missing"), "/x").to_recipe("t")
        self.assertEqual(cm.exception.code, "FORKD_E_INVALID_ARGUMENT")
        os.makedirs(os.path.join(self.dir, "empty"))
        with self.assertRaises(forkd.InvalidArgumentError):
            forkd.Template().copy(os.path.join(self.dir, "empty"), "/x").to_recipe("t")


class HostileCopyTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="forkd-py-tpl-")

    def tearDown(self) -> None:
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)

    def test_a_link_out_of_the_copied_tree_is_refused(self) -> None:
        tree = os.path.join(self.dir, "tree")
        os.makedirs(tree)
        with open(os.path.join(tree, "ok.txt"), "w") as f:
            f.write("ok")
        secret = os.path.join(self.dir, "secret")
        with open(secret, "w") as f:
            f.write("host secret")
        os.symlink(secret, os.path.join(tree, "leak"))
        with self.assertRaises(forkd.InvalidArgumentError) as cm:
            forkd.Template().copy(tree, "/srv").to_recipe("t")
        self.assertIn("link out of", str(cm.exception))
        os.remove(os.path.join(tree, "leak"))
        os.symlink(self.dir, os.path.join(tree, "up"))  # a directory link out, too
        with self.assertRaises(forkd.InvalidArgumentError):
            forkd.Template().copy(tree, "/srv").to_recipe("t")
        os.remove(os.path.join(tree, "up"))
        os.symlink("ok.txt", os.path.join(tree, "alias"))  # a link inside the tree is its target's bytes
        files = forkd.Template().copy(tree, "/srv").to_recipe("t")[0]["steps"][0]["files"]
        self.assertEqual([f["dest"] for f in files], ["/srv/alias", "/srv/ok.txt"])
        self.assertEqual(files[0]["sha256"], files[1]["sha256"])

    def test_a_file_over_the_limit_is_refused_before_it_is_read(self) -> None:
        big = os.path.join(self.dir, "big.bin")
        with open(big, "wb") as f:
            f.truncate(_T["max_copy_file_bytes"] + 1)  # sparse: costs no disk and is never read
        with self.assertRaises(forkd.PayloadTooLargeError) as cm:
            forkd.Template().copy(big, "/big").to_recipe("t")
        self.assertEqual(cm.exception.code, "FORKD_E_PAYLOAD_TOO_LARGE")

    def test_a_tree_over_the_file_count_is_refused(self) -> None:
        tree = os.path.join(self.dir, "many")
        os.makedirs(tree)
        for i in range(_T["max_copy_files"] + 1):
            with open(os.path.join(tree, f"f{i:04d}"), "w") as f:
                f.write(str(i))
        with self.assertRaises(forkd.InvalidArgumentError):
            forkd.Template().copy(tree, "/many").to_recipe("t")


class BuildFlowTest(unittest.TestCase):
    def controller(self, replies: List[Any]) -> "tuple[forkd.Controller, RecordingTransport]":
        t = RecordingTransport()
        queue = list(replies)

        def request(method: str, path: str, **kw: Any) -> Any:
            t.reply = queue.pop(0)
            return RecordingTransport.request(t, method, path, **kw)

        t.request = request  # type: ignore[method-assign]
        c = forkd.Controller(url="http://127.0.0.1:1")
        c.transport = t
        return c, t

    def test_uploads_only_missing_files_then_follows_the_job(self) -> None:
        a, b = b"first", b"second"
        tpl = forkd.Template().from_template("python").copy(a, "/a").copy(b, "/b")
        result = {"template": "t", "steps": []}
        job = lambda status, msg, **kw: {"id": "job-0123456789abcdef", "status": status, "progress": {"phase": "template", "message": msg, "fraction": None}, "result": None, "error": None, **kw}  # noqa: E731
        c, t = self.controller([
            {"missing": [sha(b)]},
            {"sha256": sha(b), "bytes": len(b), "existed": False},
            job("queued", "queued"),
            job("running", "step 1/2: copy /a"),
            job("running", "step 1/2: copy /a"),
            job("succeeded", "done", result=result),
        ])
        logs: List[str] = []
        got = forkd.Template.build(tpl, "t", controller=c, on_build_logs=lambda ev: logs.append(ev["message"]))
        self.assertEqual(got, result)
        sent = [(m, p) for m, p, *_ in t.sent]
        self.assertEqual(sent[:3], [("POST", "/v1/template-files/missing"), ("PUT", f"/v1/template-files/{sha(b)}"), ("POST", "/v1/templates")])
        self.assertEqual(t.sent[1][4], b, "the missing file's bytes, and only it")
        self.assertEqual(sorted(t.sent[0][3]["sha256"]), sorted([sha(a), sha(b)]))
        self.assertEqual(t.sent[2][3]["tag"], "t")
        self.assertEqual(logs, ["step 1/2: copy /a", "done"], "each progress event once")

    def test_a_failing_step_raises_its_code_with_the_step_details(self) -> None:
        details = {"step_index": 4, "step_type": "run", "exit_code": 7, "output": "why"}
        c, _ = self.controller([
            {"id": "job-0123456789abcdef", "status": "running", "progress": {}, "result": None, "error": None},
            {"id": "job-0123456789abcdef", "status": "failed", "progress": {}, "result": None, "error": {"code": "FORKD_E_TEMPLATE_STEP_FAILED", "message": "step 5 exited with 7", "details": details}},
        ])
        with self.assertRaises(forkd.ForkdError) as cm:
            forkd.Template.build(forkd.Template().run_cmd("exit 7"), "t", controller=c)
        self.assertEqual(cm.exception.code, "FORKD_E_TEMPLATE_STEP_FAILED")
        self.assertEqual(cm.exception.details, details)


if __name__ == "__main__":
    unittest.main()
