// apmatrix-bench: the model, the mount beside a C libfuse3 floor, the
// kernel's limits, and serve's start-up. Method: each figure is the median
// (and range) per operation over several runs of many operations.
// Usage: apmatrix-bench [state | serve | model] [--quick] [--apmatrix PATH]   (as root, with /dev/fuse)
// `state`: only `serve --state` (StateBenchmarks); `serve`: only `serve` beside
// the floor; `model`: only the model. Against the release binary unless
// --apmatrix names another.
import Glibc

let args = CommandLine.arguments
let quick = args.contains("--quick")
let root = "/" + #filePath.split(separator: "/").dropLast(4).joined(separator: "/")
let binary = args.firstIndex(of: "--apmatrix").map { args[$0 + 1] } ?? root + "/.build/release/apmatrix"

if args.contains("state") {
    print("# apmatrix benchmarks: serve --state\n")
    try StateBenchmarks.run(binary: binary, big: quick ? 2000 : 20_000, startupMdevs: quick ? 4096 : 65_536,
                            idleSeconds: quick ? 10 : 60)
    exit(0)
}

print("# apmatrix benchmarks\n")
if args.contains("model") {
    print("| what | median | range | runs |")
    print("|---|---|---|---|")
    for f in try ModelBenchmarks.run() { print(f.line) }
    exit(0)
}
print("| through `serve` as a process (C client, \(5) interleaved rounds) | apmatrix | C floor | ratio | FUSE requests per operation, apmatrix / floor |")
print("|---|---|---|---|---|")
for r in ServeBenchmarks.run(binary: binary, floorSource: root + "/Benchmarks/floor/floorfs.c",
                             clientSource: root + "/Benchmarks/floor/client.c") {
    func med(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
    func span(_ v: [Double]) -> String { "\(Int(v.min()!.rounded()))–\(Int(v.max()!.rounded()))" }
    let ratios = zip(r.ours, r.floor).map { $0 / $1 }
    func requests(_ v: Double?) -> String { v.map { String(Double(Int(($0 * 10).rounded())) / 10) } ?? "–" }
    print("| \(r.name) | \(Int(med(r.ours).rounded())) µs (\(span(r.ours))) | \(Int(med(r.floor).rounded())) µs (\(span(r.floor))) | \(Double(Int(med(ratios) * 100)) / 100)× (\(Double(Int(ratios.min()! * 100)) / 100)–\(Double(Int(ratios.max()! * 100)) / 100)) | \(requests(r.oursRequests)) / \(requests(r.floorRequests)) |")
}
if args.contains("serve") { exit(0) }
print("")
print("| what | median | range | runs |")
print("|---|---|---|---|")
for f in try ModelBenchmarks.run() { print(f.line) }
print("\n| through the mount | apmatrix | C floor | ratio |")
print("|---|---|---|---|")
for (ours, floor) in try MountBenchmarks.run(floorSource: root + "/Benchmarks/floor/floorfs.c") {
    let ratio = Double(Int(ours.median / floor.median * 100)) / 100
    print("| \(ours.name) | \(Int(ours.median.rounded())) µs (\(Int(ours.min.rounded()))–\(Int(ours.max.rounded()))) | \(Int(floor.median.rounded())) µs (\(Int(floor.min.rounded()))–\(Int(floor.max.rounded()))) | \(ratio)× |")
}
print("\n| scale and start-up | median | range | runs |")
print("|---|---|---|---|")
for f in try ScaleBenchmarks.run(mdevs: quick ? 4096 : 65536) { print(f.line) }
for f in StartupBenchmarks.run(binary: binary) { print(f.line) }
