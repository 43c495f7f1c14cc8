import APMatrixModel
import FoundationEssentials
import Glibc

/// What `serve --state` keeps: the whole host, the tail of the event log,
/// and the QMP sockets of the guests (so a restarted daemon reopens them).
public struct StateDocument: Codable, Sendable {
    public static let formatName = "apmatrix-state"
    /// Bumped on every change a reader of the previous version cannot read.
    public static let currentVersion = 1

    public var format = formatName
    public var version = currentVersion
    public var profile: Profile
    public var host: APHost
    public var log: [LogEntry]
    public var nextSequence: Int
    /// Guest name → QMP socket path.
    public var qmpSockets: [String: String]
}

/// The state file: one JSON document, replaced atomically after every
/// operation that changed the host, before the operation reports success.
///
/// A save writes a temporary file next to it, fsyncs it, renames it over the
/// state file and fsyncs the directory: after a crash the file is the old or
/// the new document, never a mix, and a returned save survives power loss.
public final class StateStore: Sendable {
    public let path: String
    private let directory: String
    private let temporary: String
    /// How many event-log entries a save keeps.
    public static let logTail = 1000

    public init(path: String) {
        self.path = path
        let slash = path.lastIndex(of: "/")
        directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        temporary = (directory == "/" ? "" : directory) + "/." + name + ".tmp"
    }

    /// A state file that cannot be used; it is left untouched.
    public struct Refused: Error, CustomStringConvertible {
        public let description: String
    }

    /// The document in the file, nil when there is none yet. A file that is
    /// truncated, corrupt, of a newer format, of another profile or of a state
    /// the kernel cannot reach is refused.
    public func load(profile: Profile) throws(Refused) -> StateDocument? {
        if access(path, F_OK) != 0 && errno == ENOENT { return nil }
        let bytes: [UInt8]
        switch Files.read(path) {
        case .success(let b): bytes = b
        case .failure(let reason): throw Refused(description: "state file \(path): cannot read it: \(reason)")
        }
        return try Self.decode(bytes, profile: profile, path: path)
    }

    /// Checks the header (format, version, profile) before the body, so each
    /// refusal says what is wrong with the file as a whole.
    public static func decode(_ bytes: [UInt8], profile: Profile, path: String) throws(Refused) -> StateDocument {
        func refuse(_ why: String) -> Refused {
            Refused(description: "state file \(path): \(why); the file is left as it is (start with --reset to replace it)")
        }
        struct Header: Decodable {
            var format: String?
            var version: Int?
            var profile: String?
        }
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: Data(bytes)) } catch {
            throw refuse("not a complete JSON document (\(bytes.count) bytes; truncated or corrupt)")
        }
        guard header.format == StateDocument.formatName else { throw refuse("not an apmatrix state file (no \"format\": \"\(StateDocument.formatName)\")") }
        guard let version = header.version, version >= 1 else { throw refuse("no valid format version") }
        guard version <= StateDocument.currentVersion else {
            throw refuse("written by a newer apmatrix (format version \(version); this one reads up to \(StateDocument.currentVersion))")
        }
        guard header.profile == profile.rawValue else {
            throw refuse("it records profile \(header.profile ?? "(none)"), not \(profile.rawValue); start with --profile \(header.profile ?? "?")")
        }
        do { return try JSONDecoder().decode(StateDocument.self, from: Data(bytes)) } catch let e as DecodingError {
            throw refuse(describe(e))
        } catch {
            throw refuse("\(error)")
        }
    }

    /// A decoding error as a field path and a reason.
    static func describe(_ e: DecodingError) -> String {
        func at(_ path: [any CodingKey]) -> String {
            path.isEmpty ? "the document" : path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch e {
        case .dataCorrupted(let c): return "\(at(c.codingPath)): \(c.debugDescription)"
        case .keyNotFound(let k, let c): return "\(at(c.codingPath)): the field \(k.stringValue) is missing"
        case .typeMismatch(let t, let c): return "\(at(c.codingPath)): expected \(t)"
        case .valueNotFound(let t, let c): return "\(at(c.codingPath)): expected \(t), found null"
        @unknown default: return "\(e)"
        }
    }

    /// Replaces the file with `document`, durably (see the type's comment).
    public func save(_ document: StateDocument) throws(Files.Failure) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data: Data
        do { data = try encoder.encode(document) } catch { throw Files.Failure(description: "cannot encode: \(error)") }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Files.Failure.errno("create \(temporary)") }
        var ok = data.withUnsafeBytes { raw -> Bool in
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
                done += n
            }
            return true
        }
        if ok { ok = fsync(fd) == 0 }
        let failure = ok ? nil : Files.Failure.errno("write \(temporary)")
        close(fd)
        if let failure {
            unlink(temporary)
            throw failure
        }
        guard rename(temporary, path) == 0 else {
            let e = Files.Failure.errno("rename \(temporary) to \(path)")
            unlink(temporary)
            throw e
        }
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0, fsync(dfd) == 0 else {
            let e = Files.Failure.errno("fsync \(directory)")
            if dfd >= 0 { close(dfd) }
            throw e
        }
        close(dfd)
    }
}
