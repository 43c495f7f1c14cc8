import HTTPTypes

/// One operation the server answers: its method and its path as
/// openapi.yaml writes it (`/api/v1/guests/{name}`). The server registers
/// exactly these, answers 405 for any other method on their paths, and the
/// client builds its URLs from them, so a path is written once.
public struct APIRoute: Sendable, Hashable, CustomStringConvertible {
    public let method: HTTPRequest.Method
    public let path: String

    init(_ method: HTTPRequest.Method, _ path: String) {
        self.method = method
        self.path = path
    }

    /// Reads are as open as sysfs reads; everything else changes the host
    /// and needs a writer (`WriteAccess`).
    public var changesHost: Bool { method != .get }

    /// `POST /api/v1/guests`
    public var description: String { "\(method.rawValue) \(path)" }

    /// The path with each `{parameter}` replaced by its value, percent-encoded.
    func path(_ parameters: [String: String]) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { segment in
            guard segment.hasPrefix("{"), let value = parameters[String(segment.dropFirst().dropLast())] else {
                return String(segment)
            }
            // URL libraries would resolve the dot segments away.
            return value == "." || value == ".." ? String(repeating: "%2E", count: value.count) : value.percentEncoded
        }.joined(separator: "/")
    }

    /// Whether a request path falls on this route's path (any method), as
    /// Hummingbird's router matches it: empty segments do not count.
    func matches(_ requestPath: String) -> Bool {
        let template = path.split(separator: "/")
        let segments = requestPath.split(separator: "/")
        return template.count == segments.count
            && zip(template, segments).allSatisfy { t, s in t.hasPrefix("{") || t == s }
    }
}

extension APIRoute {
    public static let prefix = "/api/v1"

    static func api(_ method: HTTPRequest.Method, _ path: String) -> APIRoute { APIRoute(method, prefix + path) }

    static let host = api(.get, "/host")
    static let queues = api(.get, "/queues")
    static let mdevs = api(.get, "/mdevs")
    static let events = api(.get, "/events")
    static let eventStream = api(.get, "/events/stream")
    static let matrix = api(.get, "/matrix")
    static let cell = api(.get, "/cells/{apqn}")
    static let check = api(.get, "/check")
    static let document = api(.get, "/openapi.yaml")
    static let readSysfs = api(.get, "/sysfs")
    static let writeSysfs = api(.post, "/sysfs")
    static let guests = api(.get, "/guests")
    static let startGuest = api(.post, "/guests")
    static let guest = api(.get, "/guests/{name}")
    static let stopGuest = api(.delete, "/guests/{name}")
    static let mountGuestTree = api(.post, "/guests/{name}/mount")
    static let unmountGuestTree = api(.delete, "/guests/{name}/mount")
    static let putHeldState = api(.post, "/guests/{name}/state")
    static let plug = api(.post, "/guests/{name}/devices")
    static let unplug = api(.delete, "/guests/{name}/devices/{id}")
    static let attachHostdev = api(.post, "/guests/{name}/hostdev")
    static let detachHostdev = api(.post, "/guests/{name}/hostdev/detach")
    static let migrate = api(.post, "/guests/{name}/migrate")
    static let addAdapter = api(.post, "/host/adapters")
    static let removeAdapter = api(.delete, "/host/adapters/{id}")
    static func addDomain(_ kind: DomainKind) -> APIRoute { api(.post, "/host/\(kind.rawValue)") }
    static func removeDomain(_ kind: DomainKind) -> APIRoute { api(.delete, "/host/\(kind.rawValue)/{id}") }

    /// The web page, its files and the metrics, outside the API.
    static let page = APIRoute(.get, "/")
    static let asset = APIRoute(.get, "/ui/{file}")
    static let metrics = APIRoute(.get, "/metrics")

    /// Every operation of openapi.yaml, in its order.
    public static let api: [APIRoute] = [
        host, queues, mdevs, events, eventStream, matrix, cell, readSysfs, writeSysfs, guests, startGuest, guest,
        stopGuest, mountGuestTree, unmountGuestTree, putHeldState, check, plug, unplug, attachHostdev, detachHostdev,
        migrate, addAdapter, removeAdapter, addDomain(.usage), removeDomain(.usage), addDomain(.control),
        removeDomain(.control), document,
    ]

    /// Everything the server answers.
    static let all = api + [page, asset, metrics]

    /// The methods a request path has, for `405` and its `Allow` header; empty for an unknown path.
    static func methods(at requestPath: String) -> [HTTPRequest.Method] {
        all.filter { $0.matches(requestPath) }.map(\.method)
    }
}

/// The LPAR's two kinds of domain a firmware change adds or removes: usage
/// domains (they have queues) and control domains. The raw value is the path below `/host`.
public enum DomainKind: String, Sendable, CaseIterable {
    case usage = "domains"
    case control = "control-domains"

    /// The operation's name in the metrics (`domain_add`).
    var metricsName: String { self == .usage ? "domain" : "control_domain" }
}

extension String {
    /// Escapes a value for a URL path segment or query value: every byte
    /// but RFC 3986's unreserved characters.
    var percentEncoded: String {
        var out = ""
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            default:
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
