import APMatrixModel
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// libvirt's `<hostdev mode='subsystem' type='mdev' model='vfio-ap'>` device
/// XML, as the seed's live-migration procedure uses it with virsh
/// attach-device / detach-device.
public enum HostdevXML {
    /// Collects each element's path and attributes; libxml2's SAX parser
    /// reports malformed input, where the DOM parser would recover from it.
    final class Collector: NSObject, XMLParserDelegate {
        var stack: [String] = []
        var elements: [(path: [String], attributes: [String: String])] = []
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
                    qualifiedName: String?, attributes: [String: String] = [:]) {
            stack.append(name)
            elements.append((stack, attributes))
        }
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            stack.removeLast()
        }
    }

    /// The mdev UUID of a vfio-ap hostdev; a precise EINVAL for anything else.
    public static func parse(_ bytes: [UInt8]) throws(APError) -> MdevUUID {
        // FoundationXML traps on element or attribute names that are not
        // UTF-8 (found by scripts/fuzz): refuse such bytes before parsing.
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw APError(.invalidArgument, "hostdev XML is not UTF-8 text")
        }
        let parser = XMLParser(data: Data(bytes))
        let collector = Collector()
        parser.delegate = collector
        guard parser.parse() else {
            let reason = parser.parserError.map { "\($0.localizedDescription)" } ?? "unknown error"
            throw APError(.invalidArgument, "hostdev XML is malformed (line \(parser.lineNumber)): \(reason)")
        }
        // swift-corelibs' XMLParser does not report a document cut short.
        if let open = collector.stack.last {
            throw APError(.invalidArgument, "hostdev XML is malformed: <\(open)> is never closed (truncated document?)")
        }
        guard let root = collector.elements.first, root.path == ["hostdev"] else {
            throw APError(.invalidArgument,
                          "hostdev XML: the root element must be <hostdev>, not <\(collector.elements.first?.path.last ?? "")>")
        }
        for (name, want) in [("mode", "subsystem"), ("type", "mdev"), ("model", "vfio-ap")] {
            guard let got = root.attributes[name] else {
                throw APError(.invalidArgument, "hostdev XML: <hostdev> needs \(name)='\(want)'")
            }
            guard got == want else {
                throw APError(.invalidArgument, "hostdev XML: \(name)='\(got)' is not supported; a vfio-ap mdev needs \(name)='\(want)'")
            }
        }
        if let managed = root.attributes["managed"], managed != "no" {
            throw APError(.invalidArgument, "hostdev XML: managed='\(managed)': mediated devices are not managed by libvirt; use managed='no'")
        }
        let addresses = collector.elements.filter { $0.path == ["hostdev", "source", "address"] }
        guard addresses.count == 1, let raw = addresses[0].attributes["uuid"] else {
            throw APError(.invalidArgument, "hostdev XML: expected exactly one <source><address uuid='…'/></source>")
        }
        guard let uuid = MdevUUID(parsing: raw) else {
            throw APError(.invalidArgument, "hostdev XML: '\(raw)' is not a UUID")
        }
        return uuid
    }
}
