"""Drives one migration over QMP with qemu.qmp, as a management tool does.

argv[1] is a JSON object: src (the source guest's QMP socket), dst (the
destination's, or null), uri, caps (capabilities to turn on), kill_pid
(with pause-before-switchover: SIGKILL this process at pre-switchover, then
migrate-continue), cancel (with pause-before-switchover: migrate_cancel at
pre-switchover, twice, as a management tool that retries does) and incoming
(the destination was started with -incoming defer: migrate-incoming with this
address first, as libvirt does, then a second time, which QEMU refuses; the
source migrates to the port it bound). Prints one JSON object per line: each event the source
sends ("src_event"), each the destination sends ("dst_event"), then the
answers of query-migrate and query-status ("result").
"""
import asyncio, json, os, signal, sys, time
from qemu.qmp import QMPClient, ExecuteError

def out(kind, value):
    print(json.dumps({kind: value}), flush=True)

async def collect(client, kind, done):
    with client.listener() as listener:
        async for ev in listener:
            out(kind, {"event": ev["event"], "data": ev.get("data"), "has_data": "data" in ev})
            if kind == "src_event" and ev["event"] == "MIGRATION" and ev["data"]["status"] in ("completed", "failed", "cancelled"):
                done.set()
                return

async def main():
    cfg = json.loads(sys.argv[1])
    src = QMPClient("src")
    await src.connect(cfg["src"])
    dst = None
    if cfg.get("dst"):
        dst = QMPClient("dst")
        await dst.connect(cfg["dst"])
        out("dst_status_before", await dst.execute("query-status"))
    out("src_status_before", await src.execute("query-status"))
    caps = [{"capability": c, "state": True} for c in cfg.get("caps", [])]
    await src.execute("migrate-set-capabilities", {"capabilities": caps})
    if dst:
        await dst.execute("migrate-set-capabilities", {"capabilities": [{"capability": "events", "state": True}]})
    done = asyncio.Event()
    tasks = [asyncio.create_task(collect(src, "src_event", done))]
    if dst:
        tasks.append(asyncio.create_task(collect(dst, "dst_event", asyncio.Event())))
    await asyncio.sleep(0.1)
    uri = cfg.get("uri")
    if cfg.get("incoming"):
        out("incoming", await dst.execute("migrate-incoming", {"uri": cfg["incoming"]}))
        try:
            await dst.execute("migrate-incoming", {"uri": cfg["incoming"]})
        except ExecuteError as e:
            out("incoming_again_error", e.error.error.desc)
        listening = await dst.execute("query-migrate")
        out("dst_listening", listening)
        uri = "tcp:127.0.0.1:" + listening["socket-address"][0]["port"]
    try:
        await src.execute("migrate", {"uri": uri})
    except ExecuteError as e:
        out("migrate_error", e.error.error.desc)
        return
    if cfg.get("kill_pid") or cfg.get("cancel"):
        while True:
            st = await src.execute("query-migrate")
            if st.get("status") == "pre-switchover":
                break
            await asyncio.sleep(0.05)
    if cfg.get("cancel"):
        out("cancel", await src.execute("migrate_cancel"))
        out("cancel_again", await src.execute("migrate_cancel"))
    elif cfg.get("kill_pid"):
        os.kill(cfg["kill_pid"], signal.SIGKILL)
        time.sleep(0.5)
        await src.execute("migrate-continue", {"state": "pre-switchover"})
    await asyncio.wait_for(done.wait(), 30)
    await asyncio.sleep(0.3)
    result = {"src_migrate": await src.execute("query-migrate"), "src_status": await src.execute("query-status")}
    if dst and not cfg.get("kill_pid"):
        try:
            result["dst_status"] = await dst.execute("query-status")
            result["dst_migrate"] = await dst.execute("query-migrate")
        except Exception as e:  # the destination's QEMU exited
            result["dst_gone"] = type(e).__name__
    out("result", result)
    for t in tasks:
        t.cancel()
    await src.disconnect()
    if dst:
        try:
            await dst.disconnect()
        except Exception:
            pass

asyncio.run(main())
