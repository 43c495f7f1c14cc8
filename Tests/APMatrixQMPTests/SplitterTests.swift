@testable import APMatrixQMP
import APMatrixTesting
import Testing

/// The texts (as strings) and errors a splitter yields for `chunks`.
private func split(_ chunks: [String], maxBytes: Int = JSONStreamSplitter.defaultMaxBytes,
                   maxDepth: Int = JSONStreamSplitter.defaultMaxDepth) -> [String] {
    var s = JSONStreamSplitter(maxBytes: maxBytes, maxDepth: maxDepth)
    var out: [String] = []
    for c in chunks {
        for r in s.feed(Array(c.utf8)) {
            switch r {
            case .success(let b): out.append(String(decoding: b, as: UTF8.self))
            case .failure(let e): out.append("ERROR \(e)")
            }
        }
    }
    return out
}

@Suite("JSONStreamSplitter")
struct SplitterTests {
    let stream = #"{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}, "id": "__qmp#00000"}"#
        + #"{"execute":"device_add","arguments":{"driver":"vfio-ap","id":"hostdev0","sysfsdev":"/sys/x"}}"#
        + #" [1, [2, {"a": []}]]  {"s": "}{][\"\\", "t": "\u007b"}"#

    var expected: [String] {
        [#"{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}, "id": "__qmp#00000"}"#,
         #"{"execute":"device_add","arguments":{"driver":"vfio-ap","id":"hostdev0","sysfsdev":"/sys/x"}}"#,
         #"[1, [2, {"a": []}]]"#,
         #"{"s": "}{][\"\\", "t": "\u007b"}"#]
    }

    @Test("values with no newline between or after them")
    func noNewlines() {
        #expect(split([stream]) == expected)
    }

    @Test("every chunk boundary gives the same values")
    func everyBoundary() {
        let bytes = Array(stream)
        for cut in 0...bytes.count {
            #expect(split([String(bytes[..<cut]), String(bytes[cut...])]) == expected, "cut at \(cut)")
        }
        #expect(split(bytes.map { String($0) }) == expected, "one byte at a time")
    }

    @Test("pseudo-random chunking")
    func randomChunks() {
        var g = SystemRandomNumberGenerator()
        let bytes = Array(stream.utf8)
        for _ in 0..<200 {
            var s = JSONStreamSplitter()
            var out: [String] = []
            var i = 0
            while i < bytes.count {
                let n = Int.random(in: 1...17, using: &g)
                for r in s.feed(Array(bytes[i..<min(bytes.count, i + n)])) {
                    if case .success(let b) = r { out.append(String(decoding: b, as: UTF8.self)) }
                }
                i += n
            }
            #expect(out == expected)
        }
    }

    @Test("whitespace between values is skipped; a value is held until complete")
    func whitespaceAndPartial() {
        var s = JSONStreamSplitter()
        #expect(s.feed(Array(" \r\n\t{\"a\":".utf8)).isEmpty)
        #expect(s.hasPartialValue)
        let r = s.feed(Array(" 1}\n\n".utf8))
        #expect(r.count == 1)
        #expect(!s.hasPartialValue)
        #expect(split(["\n\n  \t"]) == [])
    }

    @Test("braces and quotes inside strings, escaped quotes and backslashes")
    func stringsWithBraces() {
        #expect(split([#"{"a": "{{{[[["}"#]) == [#"{"a": "{{{[[["}"#])
        #expect(split([#"{"a": "\"}"}"#]) == [#"{"a": "\"}"}"#])
        #expect(split([#"{"a": "\\"}{"b": 1}"#]) == [#"{"a": "\\"}"#, #"{"b": 1}"#])
        #expect(split([#"{"a": "\\\"}"}"#]) == [#"{"a": "\\\"}"}"#])
        #expect(split([#"{"k\"}": "v"}"#]) == [#"{"k\"}": "v"}"#])
    }

    @Test("top-level scalars and garbage end at whitespace or the next value")
    func scalarsAndGarbage() {
        #expect(split(["123 \"str\" true{}"]) == ["123", "\"str\"", "true", "{}"])
        #expect(split(["}}} {\"a\":1}"]) == ["}}}", #"{"a":1}"#])
        #expect(split(["abc"]) == [], "a bare token waits for its delimiter")
    }

    @Test("a value over the size limit is an error, then splitting resumes")
    func oversize() {
        let big = #"{"execute": "x", "arguments": {"pad": ""# + String(repeating: "A", count: 300) + #""}}"#
        #expect(split([big + #"{"ok": 1}"#], maxBytes: 100) == ["ERROR \(QMPStreamError.tooLarge(limit: 100))", #"{"ok": 1}"#])
        // The error comes as soon as the limit is crossed, not when the value ends.
        var s = JSONStreamSplitter(maxBytes: 10)
        #expect(s.feed(Array(#"{"aaaaaaaaaaaa"#.utf8)) == [.failure(.tooLarge(limit: 10))])
        #expect(s.feed(Array(#"bbbbbb": "}{"}"#.utf8)).isEmpty)
        #expect(s.feed(Array("[1]".utf8)) == [.success(Array("[1]".utf8))])
        // Oversize garbage too.
        #expect(split([String(repeating: "x", count: 50) + " {}"], maxBytes: 10) == ["ERROR \(QMPStreamError.tooLarge(limit: 10))", "{}"])
    }

    @Test("the 1 MiB default: a 2 MiB message is one error and costs no memory")
    func defaultLimit() {
        var s = JSONStreamSplitter()
        var results: [Result<[UInt8], QMPStreamError>] = []
        results += s.feed(Array(#"{"pad": ""#.utf8))
        let chunk = [UInt8](repeating: UInt8(ascii: "A"), count: 64 * 1024)
        for _ in 0..<32 { results += s.feed(chunk) }
        results += s.feed(Array(#""}{"x":1}"#.utf8))
        #expect(results == [.failure(.tooLarge(limit: 1 << 20)), .success(Array(#"{"x":1}"#.utf8))])
    }

    @Test("nesting deeper than the limit is an error, then splitting resumes")
    func nesting() {
        let deep = String(repeating: "[", count: 1025) + String(repeating: "]", count: 1025)
        #expect(split([deep + "{}"]) == ["ERROR \(QMPStreamError.tooDeep(limit: 1024))", "{}"])
        let ok = String(repeating: "[", count: 1024) + String(repeating: "]", count: 1024)
        #expect(split([ok]) == [ok])
        #expect(split(["{\"a\": {\"b\": {\"c\": 1}}}"], maxDepth: 2) == ["ERROR \(QMPStreamError.tooDeep(limit: 2))"])
    }

    @Test("error texts read like QEMU's")
    func errorText() {
        #expect(QMPStreamError.tooLarge(limit: 1 << 20).description == "JSON parse error, message exceeds 1048576 bytes")
        #expect(QMPStreamError.tooDeep(limit: 1024).description.hasPrefix("JSON parse error, "))
    }
}

@Suite("QJSON")
struct QJSONTests {
    @Test("serialization is QEMU's: ordered members, ', ' and ': ', non-ASCII escaped")
    func serialize() throws {
        let v = try QJSONParser.parse(Array(#"{"b": [1, 2.5e3, -0], "a": {"x": null, "y": true}, "s": "é\n\u0001☃𝄞"}"#.utf8))
        #expect(v.serialized == #"{"b": [1, 2.5e3, -0], "a": {"x": null, "y": true}, "s": "\u00E9\n\u0001\u2603\uD834\uDD1E"}"#)
    }

    @Test("big integer ids survive exactly")
    func bigNumber() throws {
        let v = try QJSONParser.parse(Array(#"{"id": 123456789012345678901234567890}"#.utf8))
        #expect(v["id"]?.serialized == "123456789012345678901234567890")
    }

    @Test("syntax errors are named")
    func errors() {
        for bad in ["{", "{\"a\" 1}", "[1,]", "nul", "01", "\"\\x\"", "{\"a\":1}}", "\"\u{1}\"", "[1 2]", "{1: 2}", "\"\\u0000\""] {
            #expect(throws: QJSONError.self, "\(bad)") { try QJSONParser.parse(Array(bad.utf8)) }
        }
        #expect(throws: QJSONError.self) { try QJSONParser.parse([0x22, 0xff, 0x22]) }
    }
}
