/// How QEMU makes an s390x guest a Secure Execution guest: a confidential
/// guest support object and the machine property that names it,
/// `-object s390-pv-guest,id=pv0 -machine s390-ccw-virtio,confidential-guest-support=pv0`
/// (target/s390x/kvm/pv.c). `apmatrix guest start --secure` says the same in
/// one word. One rule for the command line and the API.
public enum ConfidentialGuestSupport {
    /// Whether a guest started with `secure`, an `-object` value and a
    /// `-machine` value is a Secure Execution guest. The object must be an
    /// `s390-pv-guest` with a well-formed id, and the machine must name it;
    /// an object no machine uses is refused (QEMU would quietly start a
    /// guest that is not secure), and so is a machine property the emulator
    /// does not have.
    public static func isSecure(secure: Bool, object: String?, machine: String?) throws(APError) -> Bool {
        let id = try object.map { o throws(APError) in try pvObjectID(o) }
        let support = try machine.flatMap { m throws(APError) in try supportID(m) }
        switch (id, support) {
        case (nil, nil): return secure
        case let (id?, nil):
            throw APError(.invalidArgument,
                          "-object s390-pv-guest,id=\(id) is not used: add -machine confidential-guest-support=\(id) (or use --secure)")
        case let (nil, support?):
            throw APError(.invalidArgument, "-machine confidential-guest-support=\(support): no -object s390-pv-guest,id=\(support)")
        case let (id?, support?):
            guard id == support else {
                throw APError(.invalidArgument, "-machine confidential-guest-support=\(support) names no object: the s390-pv-guest object's id is \(id)")
            }
            return true
        }
    }

    /// The id of `s390-pv-guest,id=ID` (`qom-type=s390-pv-guest,id=ID` too).
    static func pvObjectID(_ text: String) throws(APError) -> String {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard parts.first == "s390-pv-guest" || parts.first == "qom-type=s390-pv-guest" else {
            throw APError(.invalidArgument, "-object \(text): only s390-pv-guest objects are emulated (s390-pv-guest,id=ID)")
        }
        var id: String?
        for p in parts.dropFirst() {
            let kv = p.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, kv[0] == "id" else {
                throw APError(.invalidArgument, "-object \(text): s390-pv-guest has no property '\(kv[0])' (it takes only id=ID)")
            }
            id = kv[1]
        }
        guard let id, VfioAPDevice.isWellFormedID(id) else {
            throw APError(.invalidArgument, "-object \(text): id=ID is required; QEMU ids start with a letter, then letters, digits, '-', '.', '_'")
        }
        return id
    }

    /// The `confidential-guest-support` of a `-machine` value, if it has
    /// one; a first item without `=` is the machine type, `s390-ccw-virtio[-X.Y]`.
    static func supportID(_ text: String) throws(APError) -> String? {
        var parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        if let type = parts.first, !type.contains("=") {
            guard type.hasPrefix("s390-ccw-virtio") else {
                throw APError(.invalidArgument, "-machine \(text): the s390x machine type is s390-ccw-virtio")
            }
            parts.removeFirst()
        }
        var support: String?
        for p in parts {
            let kv = p.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, kv[0] == "confidential-guest-support" else {
                throw APError(.invalidArgument, "-machine \(text): '\(p)' is not emulated (only confidential-guest-support=ID is)")
            }
            support = kv[1]
        }
        return support
    }
}
