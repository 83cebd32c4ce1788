"""Is the running dashboard private? (No Streamlit here: the page passes its server options in.)

The dashboard has no login, reads uploaded data and starts training jobs, so it should listen on
the loopback interface only. ``forecasting dashboard`` and the committed ``.streamlit/config.toml``
files (repo root and ``app/``) make that the default; this module lets the page say so loudly when
it was started some other way (an empty ``server.address`` means *every* interface).
"""
from __future__ import annotations

import ipaddress
import os

# Set by whoever exposes the dashboard on purpose, behind a reverse proxy that authenticates.
BEHIND_PROXY_ENV = "FORECASTING_DASHBOARD_BEHIND_PROXY"
FIX = ("stop it and start it with `forecasting dashboard` (binds 127.0.0.1), or "
       "`streamlit run app/dashboard.py --server.address 127.0.0.1 --browser.gatherUsageStats false`")


def is_loopback(address: str | None) -> bool:
    """Whether a ``server.address`` value reaches this machine only (empty/None: all interfaces)."""
    if not address:
        return False
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to a public interface
        return False


def exposure_warnings(address: str | None, gather_usage_stats: bool) -> list[str]:
    """Warnings for a server that is reachable from the network or reports usage statistics."""
    out = []
    if not is_loopback(address) and os.environ.get(BEHIND_PROXY_ENV) != "1":
        where = f"address {address}" if address else "every network interface (server.address is not set)"
        out.append(f"This dashboard listens on {where}: anyone who can reach this machine can open it, see "
                   f"uploaded data and start training — it has no login. Unless this is deliberate and behind a "
                   f"reverse proxy with authentication (then set {BEHIND_PROXY_ENV}=1), {FIX}.")
    if gather_usage_stats:
        out.append(f"Streamlit sends usage statistics from this page (browser.gatherUsageStats is on); {FIX}.")
    return out
