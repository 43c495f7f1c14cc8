import Glibc

/// Small POSIX file helpers whose errors say which file and why.
public enum Files {
    /// Why a file operation failed, in `strerror` words.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        static func errno(_ what: String? = nil) -> Failure {
            let reason = String(cString: strerror(Glibc.errno))
            return Failure(description: what.map { "\($0): \(reason)" } ?? reason)
        }
    }

    /// The whole file, or the reason it cannot be read (`strerror`).
    public static func read(_ path: String) -> Result<[UInt8], Failure> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(.errno()) }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(.errno())
            }
            if n == 0 { return .success(out) }
            out += buf[0..<n]
        }
    }
}
