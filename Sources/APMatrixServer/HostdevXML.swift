import APMatrixModel
import FoundationEssentials
import FoundationXML

/// libvirt's `<hostdev mode='subsystem' type='mdev' model='vfio-ap'>` device
/// XML, as the seed's live-migration procedure uses it with virsh
/// attach-device / detach-device.
public enum HostdevXML {
    /// The mdev UUID of a vfio-ap hostdev; a precise EINVAL for anything else.
    public static func parse(_ bytes: [UInt8]) throws(APError) -> String {
        let doc: XMLDocument
        do { doc = try XMLDocument(data: Data(bytes), options: []) } catch {
            throw APError(.invalidArgument, "hostdev XML is malformed: \(error)")
        }
        guard let root = doc.rootElement(), root.name == "hostdev" else {
            throw APError(.invalidArgument, "hostdev XML: the root element must be <hostdev>, not <\(doc.rootElement()?.name ?? "")>")
        }
        func attr(_ e: XMLElement, _ name: String) -> String? { e.attribute(forName: name)?.stringValue }
        for (name, want) in [("mode", "subsystem"), ("type", "mdev"), ("model", "vfio-ap")] {
            guard let got = attr(root, name) else {
                throw APError(.invalidArgument, "hostdev XML: <hostdev> needs \(name)='\(want)'")
            }
            guard got == want else {
                throw APError(.invalidArgument, "hostdev XML: \(name)='\(got)' is not supported; a vfio-ap mdev needs \(name)='\(want)'")
            }
        }
        if let managed = attr(root, "managed"), managed != "no" {
            throw APError(.invalidArgument, "hostdev XML: managed='\(managed)': mediated devices are not managed by libvirt; use managed='no'")
        }
        let addresses = root.elements(forName: "source").flatMap { $0.elements(forName: "address") }
        guard addresses.count == 1, let raw = attr(addresses[0], "uuid") else {
            throw APError(.invalidArgument, "hostdev XML: expected exactly one <source><address uuid='…'/></source>")
        }
        guard let uuid = KernelParse.canonicalUUID(Array(raw.utf8)) else {
            throw APError(.invalidArgument, "hostdev XML: '\(raw)' is not a UUID")
        }
        return uuid
    }
}
