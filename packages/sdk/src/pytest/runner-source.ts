/**
 * The Python side of parallel pytest, sent through eval into the sandbox's persistent interpreter
 * (where the recipe already imported pytest, numpy, pandas, scikit-learn). It defines one object,
 * `_forkd_pytest`, in the interpreter's globals: `collect(root, args)` runs pytest's collection in
 * the parent (importing the project's modules and tests, which every child then inherits), and
 * `run(nodeids, env, args)` runs one shard with pytest.main in a child, in the same process.
 *
 * Module caching: pytest.main in a process that already imported the tests reuses those modules
 * (that is the point: no child imports them again). The guard: every project module's source is
 * hashed at collection; before a run, if any of those files changed or vanished, every project
 * module is dropped from sys.modules (and the import system's caches cleared) so pytest imports the
 * project as it is now; the libraries it uses stay imported.
 */
export const PYTEST_RUNNER_SOURCE = String.raw`
import contextlib as _fp_contextlib
import hashlib as _fp_hashlib
import importlib as _fp_importlib
import io as _fp_io
import os as _fp_os
import sys as _fp_sys
import time as _fp_time
import pytest as _fp_pytest


class _ForkdPytest:
    TEXT_CAP = 4000
    # No .pytest_cache written into the project; output kept off the agent's stdout.
    BASE_ARGS = ['-p', 'no:cacheprovider', '-q', '-o', 'console_output_style=classic']

    def __init__(self):
        self.root = None
        self.hashes = {}

    @staticmethod
    def _digest(path):
        try:
            with open(path, 'rb') as f:
                return _fp_hashlib.sha256(f.read()).hexdigest()
        except OSError:
            return None

    def _project_modules(self):
        out = {}
        for name, mod in list(_fp_sys.modules.items()):
            f = getattr(mod, '__file__', None)
            if f and self.root and _fp_os.path.realpath(f).startswith(self.root + _fp_os.sep):
                out[name] = _fp_os.path.realpath(f)
        return out

    def _main(self, args, plugin):
        sink = _fp_io.StringIO()
        with _fp_contextlib.redirect_stdout(sink), _fp_contextlib.redirect_stderr(sink):
            code = _fp_pytest.main(self.BASE_ARGS + list(args), plugins=[plugin])
        return int(code), sink.getvalue()[-self.TEXT_CAP:]

    def collect(self, root, args=()):
        self.root = _fp_os.path.realpath(root)
        _fp_os.chdir(self.root)
        items = []

        class Collector:
            def pytest_collection_finish(self, session):
                for it in session.items:
                    items.append({'nodeid': it.nodeid, 'file': it.location[0]})

            def pytest_collectreport(self, report):
                if report.failed:
                    items.append({'nodeid': report.nodeid, 'file': report.nodeid.split('::')[0], 'collect_error': str(report.longrepr)[-_ForkdPytest.TEXT_CAP:]})

        t0 = _fp_time.perf_counter()
        code, out = self._main(['--collect-only', *args], Collector())
        self.hashes = {name: self._digest(f) for name, f in self._project_modules().items()}
        return {'exit_code': code, 'items': items, 'modules': sorted(self.hashes), 'seconds': _fp_time.perf_counter() - t0, 'output': out if code not in (0, 5) else ''}

    def _drop_changed(self):
        # One changed file drops every project module: a test module that did "from pkg import f"
        # holds the old f until it is imported again too. The heavy libraries stay.
        mods = self._project_modules()
        if all(self._digest(f) == self.hashes.get(name) for name, f in mods.items()):
            return []
        for name in mods:
            _fp_sys.modules.pop(name, None)
        _fp_importlib.invalidate_caches()
        return sorted(mods)

    def run(self, nodeids, env=None, args=()):
        if self.root is None:
            raise RuntimeError('collect() first: the parent collects, the children run')
        _fp_os.chdir(self.root)
        for k, v in (env or {}).items():
            _fp_os.environ[str(k)] = str(v)
        reloaded = self._drop_changed()
        before = set(_fp_sys.modules)
        tests = {}
        order = []
        cap = self.TEXT_CAP

        class Recorder:
            def pytest_runtest_logreport(self, report):
                t = tests.get(report.nodeid)
                if t is None:
                    t = tests[report.nodeid] = {'nodeid': report.nodeid, 'outcome': 'passed', 'seconds': 0.0}
                    order.append(report.nodeid)
                t['seconds'] += report.duration
                if report.skipped and report.when in ('setup', 'call'):
                    t['outcome'] = 'skipped'
                    lr = report.longrepr
                    t['message'] = str(lr[2] if isinstance(lr, tuple) and len(lr) == 3 else lr)[:cap]
                elif report.failed:
                    t['outcome'] = 'failed' if report.when == 'call' else 'error'
                    crash = getattr(report.longrepr, 'reprcrash', None)
                    t['message'] = (crash.message if crash is not None else str(report.longrepr).splitlines()[-1:][0] if str(report.longrepr) else '')[:cap]
                    t['details'] = report.longreprtext[-cap:]
                    t['phase'] = report.when
                if report.when == 'call' and (report.capstdout or report.capstderr):
                    t['output'] = (report.capstdout + report.capstderr)[-cap:]

            def pytest_collectreport(self, report):
                if report.failed:
                    tests[report.nodeid] = {'nodeid': report.nodeid, 'outcome': 'error', 'seconds': 0.0, 'phase': 'collect', 'message': str(report.longrepr).splitlines()[-1:][0][:cap] if str(report.longrepr) else 'collection failed', 'details': str(report.longrepr)[-cap:]}
                    order.append(report.nodeid)

        t0 = _fp_time.perf_counter()
        code, out = self._main([*args, *nodeids], Recorder())
        wall = _fp_time.perf_counter() - t0
        imported = sorted(set(_fp_sys.modules) - before)
        project = set(self._project_modules())
        if reloaded:
            self.hashes = {name: self._digest(f) for name, f in self._project_modules().items()}
        return {
            'exit_code': code,
            'tests': [tests[n] for n in order],
            'seconds': wall,
            'reloaded': reloaded,
            'imported': imported[:500],
            'imported_count': len(imported),
            'imported_project': sorted(project.intersection(imported)),
            'output': out if code not in (0, 1, 5) else '',
        }


_forkd_pytest = _ForkdPytest()
None
`;
