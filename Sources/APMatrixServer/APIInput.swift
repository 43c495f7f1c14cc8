import APMatrixModel
import Foundation
import HTTPTypes
import Hummingbird

/// A rule openapi.yaml states for a text input, as the same regular
/// expression the server checks (`pattern` in the document).
struct APIPattern: Sendable {
    let source: String
    /// What a value must be: "an APQN such as 05.0004".
    let noun: String
    /// What to do about a value that is not: "write it as …".
    let advice: String

    init(_ source: String, _ noun: String, advice: String? = nil) {
        self.source = source
        self.noun = noun
        self.advice = advice ?? "use \(noun)"
    }

    func matches(_ value: String) -> Bool { (try? Regex(source).wholeMatch(in: value)) != nil }

    /// The model's guest name rule.
    static let guestName = APIPattern("^[!-.0-~]{1,64}$", "a guest name: 1-64 printable ASCII characters without spaces or '/'")
    /// QEMU's `id_wellformed`, as the model checks it.
    static let deviceID = APIPattern("^[A-Za-z][A-Za-z0-9._-]*$",
                                     "a QEMU device id: a letter, then letters, digits, '-', '.', '_'")
    /// A queue device's name, `%02x.%04x`, for the ids that exist (0-255).
    static let apqn = APIPattern(#"^[0-9a-f]{2}\.00[0-9a-f]{2}$"#, "an APQN such as 05.0004 (two and four hex digits)",
                                 advice: "write it as the queue device is named, such as 05.0004")
    /// An adapter or domain id in a URL.
    static let id = APIPattern("^(0|[1-9][0-9]?|1[0-9]{2}|2[0-4][0-9]|25[0-5]|0x[0-9a-fA-F]{1,2})$", "an id 0-255, decimal or 0x hex")
    /// A sysfs path below the mount, relative, of the names sysfs uses.
    static let sysfsPath = APIPattern("^[A-Za-z0-9_.:+-]+(/[A-Za-z0-9_.:+-]+)*$", "a path below the mount such as bus/ap/apmask")
    static let absolutePath = APIPattern("^/.*$", "an absolute path (the daemon has its own working directory)")
    /// The model's rule for state a guest puts into a queue.
    static let guestState = APIPattern("^[ -~]{1,256}$", "1-256 printable ASCII characters")
    static let server = APIPattern("^(https?://.+|unix:.+)$", "a daemon's API: http://HOST:PORT or unix:PATH")
    /// A daemon's write token as serve writes and prints it.
    static let token = APIPattern("^[0-9a-f]{64}$", "a daemon's token: the 64 hex digits serve writes to its token file")
    static let sequence = APIPattern("^[0-9]{1,18}$", "an event sequence number, 0 or more")
    /// QEMU's `-incoming` forms this emulator has (the host and port are parsed by the model).
    static let migrationURI = APIPattern("^(tcp:.+|defer)$", "a migration address tcp:HOST:PORT, or defer")
}

extension APIContext {
    /// A path parameter, percent-decoded and checked against its pattern.
    func parameter(_ name: String, _ pattern: APIPattern) throws(APIError) -> String {
        let raw = parameters.get(name) ?? ""
        guard let value = raw.removingPercentEncoding, pattern.matches(value) else {
            throw .badRequest("\(name) '\(raw)' is not \(pattern.noun)")
        }
        return value
    }

    /// An adapter or domain id in the path: decimal or 0x hex, 0-255.
    func id<ID: APIdentifier>() throws(APIError) -> ID {
        let text = try parameter("id", .id)
        // The pattern admits only decimal and 0x forms of 0-255.
        return try! ID(parsing: text)
    }
}

extension Request {
    /// A query parameter given at most once, checked against its pattern.
    func query(_ name: String, _ pattern: APIPattern) throws(APIError) -> String? {
        try Self.single(name, uri.queryParameters.getAll(name), pattern)
    }

    /// A header given at most once, checked against its pattern.
    func header(_ name: HTTPField.Name, _ pattern: APIPattern) throws(APIError) -> String? {
        try Self.single(name.rawName, headers[values: name], pattern)
    }

    static func single(_ name: String, _ values: [String], _ pattern: APIPattern) throws(APIError) -> String? {
        guard values.count <= 1 else { throw .badRequest("\(name): give it once, not \(values.count) times") }
        guard let value = values.first else { return nil }
        guard pattern.matches(value) else { throw .badRequest("\(name) '\(value)' is not \(pattern.noun)") }
        return value
    }

    /// The body, up to 1 MiB.
    func bytes() async throws(APIError) -> [UInt8] {
        do { return Array(buffer: try await body.collect(upTo: 1 << 20)) } catch {
            throw APIError(status: .contentTooLarge, APError(.argListTooLong, "the request body is larger than 1 MiB"))
        }
    }
}

/// A JSON request body as openapi.yaml declares it: an object with the
/// declared fields only (`additionalProperties: false`), none of them null,
/// the required ones present, each of its JSON type; then the fields' own
/// patterns and ranges (`validate`).
protocol RequestBody: Decodable, Sendable {
    associatedtype CodingKeys: CodingKey & CaseIterable
    func validate() throws(APIError)
}

extension RequestBody {
    static func decode(_ request: Request) async throws(APIError) -> Self {
        let bytes = try await request.bytes()
        func refuse(_ why: String) -> APIError { .badRequest("the body is not a valid \(Self.self): \(why)") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) else {
            throw refuse("not JSON")
        }
        guard let fields = object as? [String: Any] else { throw refuse("not a JSON object") }
        let known = CodingKeys.allCases.map(\.stringValue)
        if let extra = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw refuse("unknown field '\(extra)'; the fields are \(known.joined(separator: ", "))")
        }
        if let null = fields.keys.sorted().first(where: { fields[$0] is NSNull }) {
            throw refuse("field '\(null)' is null; leave it out instead")
        }
        // No field of a request is a fraction; JSONDecoder would not say which one holds it.
        if let (field, number) = fields.sorted(by: { $0.key < $1.key }).lazy.compactMap({ f -> (String, Double)? in
            guard let n = f.value as? NSNumber, !(f.value is Bool), n.doubleValue != n.doubleValue.rounded() else { return nil }
            return (f.key, n.doubleValue)
        }).first {
            throw refuse("field '\(field)' holds \(number), which is not an integer")
        }
        let value: Self
        do { value = try JSONDecoder().decode(Self.self, from: Data(bytes)) } catch let e as DecodingError {
            throw refuse(describe(e))
        } catch {
            throw refuse("\(error)")
        }
        try value.validate()
        return value
    }

    static func describe(_ e: DecodingError) -> String {
        switch e {
        case .keyNotFound(let key, _): return "field '\(key.stringValue)' is required"
        case .typeMismatch(let type, let c), .valueNotFound(let type, let c):
            let kind = type == Int.self ? "an integer" : type == String.self ? "a string" : "\(type)"
            return "field '\(c.codingPath.map(\.stringValue).joined(separator: "."))' must be \(kind)"
        case .dataCorrupted(let c): return "field '\(c.codingPath.map(\.stringValue).joined(separator: "."))': \(c.debugDescription)"
        @unknown default: return "\(e)"
        }
    }

    /// Checks an optional text field against its pattern.
    func check(_ field: String, _ value: String?, _ pattern: APIPattern) throws(APIError) {
        if let value, !pattern.matches(value) { throw .badRequest("\(field) '\(value)': \(pattern.advice)") }
    }

    /// Checks an id field: 0-255.
    func check(_ field: String, id: Int) throws(APIError) {
        guard (0...255).contains(id) else { throw .badRequest("\(field) \(id): an id 0-255") }
    }
}
