import APMatrixModel
import FoundationEssentials

/// What `serve --state` keeps: the whole host, the tail of the event log,
/// and the QMP sockets of the guests (so a restarted daemon reopens them).
///
/// This is the version-1 state file (one JSON document), which is imported
/// once into a state database (`serve --import-state`), and the form in
/// which a state database is read back: its rows are assembled into this
/// document by SQLite's JSON functions, so both are checked by one decoder.
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

    public init(profile: Profile, host: APHost, log: [LogEntry] = [], nextSequence: Int = 1, qmpSockets: [String: String] = [:]) {
        (self.profile, self.host, self.log, self.nextSequence, self.qmpSockets) = (profile, host, log, nextSequence, qmpSockets)
    }
}

extension StateDocument {
    /// A state that cannot be used; the file is left untouched.
    public struct Refused: Error, CustomStringConvertible {
        public let description: String

        /// The one line that says why `path` is refused.
        static func file(_ path: String, _ why: String) -> Refused {
            Refused(description: "state file \(path): \(why); the file is left as it is (start with --reset to replace it)")
        }
    }

    /// Checks the header (format, version, profile) before the body, so each
    /// refusal says what is wrong with the file as a whole.
    public static func decode(_ bytes: [UInt8], profile: Profile, path: String) throws(Refused) -> StateDocument {
        struct Header: Decodable {
            var format: String?
            var version: Int?
            var profile: String?
        }
        let data = Data(bytes)
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: data) } catch {
            throw Refused.file(path, "not a complete JSON document (\(bytes.count) bytes; truncated or corrupt)")
        }
        guard header.format == StateDocument.formatName else { throw Refused.file(path, "not an apmatrix state file (no \"format\": \"\(StateDocument.formatName)\")") }
        guard let version = header.version, version >= 1 else { throw Refused.file(path, "no valid format version") }
        guard version <= StateDocument.currentVersion else {
            throw Refused.file(path, "written by a newer apmatrix (format version \(version); this one reads up to \(StateDocument.currentVersion))")
        }
        guard header.profile == profile.rawValue else { throw otherProfile(header.profile, profile, path) }
        return try decodeBody(data, path: path)
    }

    static func otherProfile(_ recorded: String?, _ profile: Profile, _ path: String) -> Refused {
        .file(path, "it records profile \(recorded ?? "(none)"), not \(profile.rawValue); start with --profile \(recorded ?? "?")")
    }

    /// The document whose header was checked: the host is checked as it is decoded.
    static func decodeBody(_ data: Data, path: String) throws(Refused) -> StateDocument {
        do { return try JSONDecoder().decode(StateDocument.self, from: data) } catch let e as DecodingError {
            throw Refused.file(path, describe(e))
        } catch {
            throw Refused.file(path, "\(error)")
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

    /// A version-1 state file (one JSON document), to import.
    public static func load(version1 path: String, profile: Profile) throws(Refused) -> StateDocument {
        switch Files.read(path) {
        case .success(let bytes): return try decode(bytes, profile: profile, path: path)
        case .failure(let reason): throw Refused(description: "state file \(path): cannot read it: \(reason)")
        }
    }
}
