import APMatrixModel

// apmask/aqmask writes (`ap_parse_mask_str`): whatever is accepted prints as
// a mask that parses back to itself.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let current = Bitmap256<APID>([0, 5, 71, 255])
    if case .success(let m) = KernelParse.apMask(bytes, current: current) {
        precondition(KernelParse.apMask(Array(m.hexString.utf8), current: Bitmap256<APID>()) == .success(m))
        precondition((try? IdList.parse(m.description)) == m)
    }
    return 0
}
