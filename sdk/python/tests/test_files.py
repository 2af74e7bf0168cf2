"""Integration: sandbox.files (binary and text round trips, streaming, list, stat, remove, rename)."""
import hashlib
import io
import os
import tempfile
import unittest

import _support
import forkd


class FilesTest(_support.SandboxTestCase):
    def test_binary_round_trip_of_a_few_megabytes(self) -> None:
        data = os.urandom(5 * 1024 * 1024 + 123)  # several of the daemon's 4 MiB agent chunks
        info = self.sb.files.write("/tmp/py/big.bin", data)
        self.assertEqual((info.path, info.name, info.size), ("/tmp/py/big.bin", "big.bin", len(data)))
        back = self.sb.files.read("/tmp/py/big.bin", format="bytes")
        self.assertEqual(len(back), len(data))
        self.assertEqual(hashlib.sha256(back).hexdigest(), hashlib.sha256(data).hexdigest())
        guest = self.sb.commands.run("sha256sum /tmp/py/big.bin").stdout.split()[0]
        self.assertEqual(guest, hashlib.sha256(data).hexdigest())

    def test_streamed_upload_and_download_with_files(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "src.bin")
            h = hashlib.sha256()
            with open(src, "wb") as f:
                for _ in range(6):
                    chunk = os.urandom(1024 * 1024)
                    h.update(chunk)
                    f.write(chunk)
            with open(src, "rb") as f:
                self.assertEqual(self.sb.files.write("/tmp/py/streamed.bin", f).size, 6 * 1024 * 1024)
            dst = os.path.join(d, "dst.bin")
            with open(dst, "wb") as f:
                self.assertEqual(self.sb.files.download("/tmp/py/streamed.bin", f), 6 * 1024 * 1024)
            with open(dst, "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), h.hexdigest())
        h2 = hashlib.sha256()
        n = 0
        for chunk in self.sb.files.read("/tmp/py/streamed.bin", format="stream"):
            self.assertLessEqual(len(chunk), 1024 * 1024)
            h2.update(chunk)
            n += len(chunk)
        self.assertEqual((n, h2.hexdigest()), (6 * 1024 * 1024, h.hexdigest()))
        parts = (bytes([i]) * 100_000 for i in range(30))
        self.assertEqual(self.sb.files.write("/tmp/py/gen.bin", parts).size, 3_000_000)
        self.assertEqual(self.sb.commands.run("wc -c < /tmp/py/gen.bin").stdout.strip(), "3000000")

    def test_text_and_empty_files(self) -> None:
        text = "h\u00e9llo w\u00f6rld \u2603\nline 2\n"
        self.sb.files.write("/tmp/py/t.txt", text)
        self.assertEqual(self.sb.files.read("/tmp/py/t.txt"), text)
        self.assertEqual(self.sb.commands.run("cat /tmp/py/t.txt").stdout, text)
        self.sb.files.write("/tmp/py/t.txt", "replaced")
        self.assertEqual(self.sb.files.read("/tmp/py/t.txt"), "replaced")
        self.assertEqual(self.sb.files.write("/tmp/py/empty", b"").size, 0)
        self.assertEqual(self.sb.files.read("/tmp/py/empty", format="bytes"), b"")
        self.sb.files.write_files([{"path": "/tmp/py/m1", "data": "1"}, {"path": "/tmp/py/m2", "data": io.BytesIO(b"2")}])
        self.assertEqual(self.sb.commands.run("cat /tmp/py/m1 /tmp/py/m2").stdout, "12")

    def test_exists_list_stat_mkdir_rename_remove(self) -> None:
        fs = self.sb.files
        self.assertTrue(fs.make_dir("/tmp/py/tree/sub"))
        self.assertFalse(fs.make_dir("/tmp/py/tree/sub"), "already there")
        fs.write("/tmp/py/tree/a.txt", "aaa")
        fs.write("/tmp/py/tree/sub/b.txt", "bb")
        self.assertTrue(fs.exists("/tmp/py/tree/a.txt"))
        self.assertFalse(fs.exists("/tmp/py/tree/nope"))
        top = {e.name: e for e in fs.list("/tmp/py/tree")}
        self.assertEqual(set(top), {"a.txt", "sub"})
        self.assertEqual((top["a.txt"].type, top["a.txt"].size, top["a.txt"].path), ("file", 3, "/tmp/py/tree/a.txt"))
        self.assertEqual(top["sub"].type, "dir")
        deep = {e.path for e in fs.list("/tmp/py/tree", depth=2)}
        self.assertIn("/tmp/py/tree/sub/b.txt", deep)
        st = fs.get_info("/tmp/py/tree/a.txt")
        self.assertEqual((st.name, st.type, st.size), ("a.txt", "file", 3))
        self.assertIsNotNone(st.modified_time)
        moved = fs.rename("/tmp/py/tree/a.txt", "/tmp/py/tree/c.txt")
        self.assertEqual((moved.path, moved.size), ("/tmp/py/tree/c.txt", 3))
        self.assertFalse(fs.exists("/tmp/py/tree/a.txt"))
        fs.remove("/tmp/py/tree/c.txt")
        self.assertFalse(fs.exists("/tmp/py/tree/c.txt"))
        fs.remove("/tmp/py/tree")
        self.assertFalse(fs.exists("/tmp/py/tree"))

    def test_mode_and_errors(self) -> None:
        self.sb.files.write("/tmp/py/run.sh", "#!/bin/sh\necho ran\n", mode=0o755)
        self.assertEqual(self.sb.files.get_info("/tmp/py/run.sh").mode & 0o777, 0o755)
        self.assertEqual(self.sb.commands.run("/tmp/py/run.sh").stdout, "ran\n")
        with self.assertRaises(forkd.NotFoundError) as cm:
            self.sb.files.read("/tmp/py/does-not-exist")
        self.assertEqual(cm.exception.code, "FORKD_E_FILE_NOT_FOUND")
        with self.assertRaises(forkd.InvalidArgumentError):
            self.sb.files.read("relative/path")
        with self.assertRaises(forkd.InvalidArgumentError):
            self.sb.files.read("/tmp", format="bytes")  # a directory


if __name__ == "__main__":
    unittest.main()
