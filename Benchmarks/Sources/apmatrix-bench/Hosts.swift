import APMatrixModel

/// A host at the kernel's limits: 256 adapters × 256 usage domains, every
/// queue free for vfio_ap (both masks zero), room for 65,536 mdevs.
func fullHostDescription() -> HostDescription {
    HostDescription(usageDomains: .all, apmask: Bitmap256(), aqmask: Bitmap256(),
                    adapters: (APID(0)...APID.extendedMax).map { AdapterDescription(id: $0, type: AdapterType("CEX8C")!) })
}

/// The JSON of the same host, for `serve --host`.
let fullHostJSON = #"{"domains": "0-255", "apmask": "0x", "aqmask": "0x", "adapters": ["#
    + (0...255).map { #"{"id": \#($0), "type": "CEX8C"}"# }.joined(separator: ", ") + "]}"

/// A UUID made from a number, for mdev `n`.
func uuid(_ n: Int) -> String {
    let h = String(n, radix: 16)
    return "00000000-0000-4000-8000-" + String(repeating: "0", count: 12 - h.count) + h
}

/// The same UUID as the model types it.
func mdevUUID(_ n: Int) -> MdevUUID { MdevUUID(parsing: uuid(n))! }

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
