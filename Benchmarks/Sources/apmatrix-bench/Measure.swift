import Glibc

/// A measurement: `repetitions` runs of `iterations` operations each; the
/// figures are per operation over the runs (median, min, max).
struct Figure {
    let name: String
    let unit: String
    let median: Double
    let min: Double
    let max: Double
    let runs: Int

    var line: String {
        func f(_ v: Double) -> String {
            v >= 100 ? String(Int(v.rounded())) : String(Double(Int(v * 100)) / 100)
        }
        return "| \(name) | \(f(median)) \(unit) | \(f(min))–\(f(max)) | \(runs) |"
    }
}

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// Times `body` (which performs `iterations` operations) `repetitions` times;
/// returns nanoseconds, microseconds or milliseconds per operation.
func measure(_ name: String, unit: String = "µs", repetitions: Int = 5, iterations: Int,
             _ body: () -> Void) -> Figure {
    let scale: Double = unit == "ns" ? 1e9 : unit == "ms" ? 1e3 : 1e6
    var per: [Double] = []
    for _ in 0..<repetitions {
        let t0 = now()
        body()
        per.append((now() - t0) * scale / Double(iterations))
    }
    per.sort()
    return Figure(name: name, unit: unit, median: per[per.count / 2], min: per.first!, max: per.last!, runs: repetitions)
}

/// Peak resident set size of this process, in MiB (VmHWM).
func peakRSS() -> Double { procNumber("/proc/self/status", "VmHWM:") / 1024 }

/// The number on the line of a /proc file that starts with `key` (`VmHWM:`, `write_bytes:`); -1 if none.
func procNumber(_ path: String, _ key: String) -> Double {
    guard let f = fopen(path, "r") else { return -1 }
    defer { fclose(f) }
    var line: UnsafeMutablePointer<CChar>?
    var cap = 0
    defer { free(line) }
    while getline(&line, &cap, f) > 0 {
        let s = String(cString: line!)
        if s.hasPrefix(key) { return s.split(whereSeparator: { " \t\n".contains($0) }).compactMap { Double($0) }.first ?? -1 }
    }
    return -1
}

// MARK: POSIX I/O like a shell's echo and cat

@inline(__always)
func echo(_ path: String, _ text: String) -> Int32 {
    let fd = open(path, O_WRONLY | O_TRUNC)
    guard fd >= 0 else { return errno }
    defer { close(fd) }
    var t = text
    let n = t.withUTF8 { write(fd, $0.baseAddress, $0.count) }
    return n < 0 ? errno : 0
}

@inline(__always)
func cat(_ path: String) -> Int {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return -1 }
    defer { close(fd) }
    var total = 0
    var buf = [UInt8](repeating: 0, count: 8192)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { return total }
        total += n
    }
}

func must(_ rc: Int32, _ what: String) {
    if rc != 0 {
        FileHandleError.print("apmatrix-bench: \(what): \(String(cString: strerror(rc)))")
        exit(1)
    }
}

enum FileHandleError {
    static func print(_ s: String) {
        var line = s + "\n"
        line.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}

func tempDir(_ prefix: String) -> String {
    var t = Array("/tmp/\(prefix).XXXXXX".utf8CString)
    return t.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}

/// Runs a command line with /bin/sh and returns its exit status.
func shell(_ command: String) -> Int32 {
    var pid: pid_t = 0
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup("-c"), strdup(command), nil]
    defer { argv.forEach { free($0) } }
    guard posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ) == 0 else { return -1 }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return (status >> 8) & 0xff
}
