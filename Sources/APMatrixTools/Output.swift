import Foundation

/// Text helpers shared by the read commands.
enum Output {
    /// Columns separated by two spaces, each padded to its widest cell; the
    /// last column is not padded, so lines carry no trailing blanks.
    static func table(_ rows: [[String]]) -> String {
        guard let n = rows.map(\.count).max() else { return "" }
        var widths = [Int](repeating: 0, count: n)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        return rows.map { r in
            r.enumerated().map { i, c in i == r.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count) }
                .joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    /// Pretty JSON with sorted keys: the documented, stable form of `--json`.
    static func json(_ object: Any) -> String {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// A value or JSON null.
    static func orNull(_ v: Any?) -> Any { v ?? NSNull() }
}
