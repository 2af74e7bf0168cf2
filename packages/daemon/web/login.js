// Trades the one-time code in this page's URL fragment (never sent to any server by the browser)
// for the session cookie, then opens the tree. The fragment is wiped from the address bar and
// history first, so the code is not left behind even though it can be used only once.
const status = document.getElementById('status');
const m = /(?:^#|&)code=([0-9a-f]+)/.exec(location.hash);
history.replaceState(null, '', '/ui/login');
if (!m) {
  status.textContent = 'No login code in this address: run `forkd ui` to get one.';
} else {
  const r = await fetch('/v1/ui/session', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-forkd-ui': '1' },
    body: JSON.stringify({ code: m[1] }),
  });
  if (r.status === 204) {
    location.replace('/ui');
  } else {
    let msg = `HTTP ${r.status}`;
    try { msg = (await r.json()).error.message; } catch { /* not JSON */ }
    status.textContent = `Sign-in failed: ${msg}`;
  }
}
