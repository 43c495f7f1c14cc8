import APMatrixModel
import APMatrixTesting
import Foundation
import Testing

/// The typed identifiers: how each is written, parsed and encoded.
@Suite struct IdentifierTests {
    @Test func idsAreWrittenAsSysfsNamesThem() {
        #expect(APID(5).description == "05" && APID(0xab).description == "ab")
        #expect(APQI(4).description == "0004" && APQI(0xff).description == "00ff")
        #expect(APQN(5, 0x47).description == "05.0047")
        #expect(APID(5).cardName == "card05")
        #expect(APID(5).value == 5 && APQI(0xab).value == 171)
    }

    @Test func theLegacyMaximaAreNamedOnce() {
        #expect(APID.legacyMax == 63 && APQI.legacyMax == 15)
        #expect(APID.extendedMax == 255 && APQI.extendedMax == 255)
    }

    @Test func exactlyOnlyFromZeroTo255() {
        #expect(APID(exactly: 255) == 255 && APID(exactly: 256) == nil && APID(exactly: -1) == nil)
        #expect(APQI(exactly: UInt64(7)) == 7)
    }

    @Test func oneIdAsPeopleWriteIt() throws {
        #expect(try APID(parsing: "5") == 5)
        #expect(try APID(parsing: "0x47") == 0x47)
        #expect(try APQI(parsing: " 0XaB ") == 0xab)
        #expect(throws: IdList.ParseError.outOfRange(256, max: 255)) { try APID(parsing: "256") }
        #expect(throws: IdList.ParseError.notAnID("x")) { try APQI(parsing: "x") }
        #expect(throws: IdList.ParseError.notAnID("")) { try APQI(parsing: "") }
        #expect("\(IdList.ParseError.notAnID("5-6"))" == "'5-6' is not an id (decimal or 0x hex)")
    }

    @Test func cardNamesAndQueueNamesAreExact() {
        #expect(APID(cardName: "card05") == 5 && APID(cardName: "cardff") == 0xff)
        for bad in ["card5", "card005", "cardFF", "card0x", "crd05", "card-1"] { #expect(APID(cardName: bad) == nil, "\(bad)") }
        #expect(APQN(sysfsName: "05.0004") == APQN(5, 4) && APQN(sysfsName: "ff.00ff") == APQN(0xff, 0xff))
        for bad in ["5.4", "05.0100", "05.0004x", "zz.0004", "05.00AB", "050.004", "05-0004"] {
            #expect(APQN(sysfsName: bad) == nil, "\(bad)")
        }
    }

    @Test func idsAreJSONNumbersAndIdSetsIdLists() throws {
        let json = String(decoding: try JSONEncoder().encode([APID(5), APID(0xff)]), as: UTF8.self)
        #expect(json == "[5,255]")
        #expect(try JSONDecoder().decode([APQI].self, from: Data("[4,71]".utf8)) == [4, 71])
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([APID].self, from: Data("[256]".utf8)) }
        let m = Matrix(apm: Bitmap256([5, 6]), aqm: Bitmap256(0...15) | Bitmap256([0x47]))
        #expect(String(decoding: try JSONEncoder().encode(m.aqm), as: UTF8.self) == #""0-15,71""#)
        #expect(String(decoding: try JSONEncoder().encode([APID(5): "x"]), as: UTF8.self) == #"{"5":"x"}"#)
        #expect(try JSONDecoder().decode([APID: String].self, from: Data(#"{"5":"x"}"#.utf8)) == [5: "x"])
    }

    @Test func idListsTakeDecimalHexAndRanges() throws {
        let q: Bitmap256<APQI> = try IdList.parse("0-3, 0x47,0xab")
        #expect(Array(q) == [0, 1, 2, 3, 0x47, 0xab])
        #expect(q.description == "0-3,71,171")
        #expect(throws: IdList.ParseError.outOfRange(64, max: 63)) { _ = try IdList.parse("1,64", max: APID.legacyMax) }
        #expect(throws: IdList.ParseError.malformed("3-1")) { _ = try IdList.parse("3-1") as Bitmap256<APID> }
    }

    @Test func bitmapsKeepTheKernelsBitOrder() {
        var m = Bitmap256<APID>()
        m.insert(0)
        m.insert(63)
        m.insert(255)
        #expect(m.w0 == 0x8000_0000_0000_0001 && m.w3 == 1)
        #expect(m.first == 0 && m.count == 3 && Array(m) == [0, 63, 255])
        m.remove(0)
        #expect(!m.contains(0) && m.first == 63)
        #expect(Bitmap256<APQI>.through(15).hexString == "0xffff" + String(repeating: "0", count: 60))
        #expect(Bitmap256<APQI>.through(255) == .all && Bitmap256<APQI>.through(0) == Bitmap256([0]))
    }

    @Test func mdevUUIDsAreCanonicalText() throws {
        let u = try #require(MdevUUID(parsing: "62177883-F1BB-47F0-914D-32A22E3A8804"))
        #expect(u.description == "62177883-f1bb-47f0-914d-32a22e3a8804")
        #expect(u.high == 0x6217_7883_f1bb_47f0 && u.low == 0x914d_32a2_2e3a_8804)
        #expect(MdevUUID(sysfsName: "62177883-F1BB-47F0-914D-32A22E3A8804") == nil, "sysfs names the mdev in lowercase")
        #expect(MdevUUID(sysfsName: "62177883-f1bb-47f0-914d-32a22e3a8804") == u)
        for bad in ["62177883f1bb-47f0-914d-32a22e3a8804-", "62177883-f1bb-47f0-914d-32a22e3a880", "g2177883-f1bb-47f0-914d-32a22e3a8804", ""] {
            #expect(MdevUUID(parsing: bad) == nil, "\(bad)")
        }
        let low = try #require(MdevUUID(parsing: "00000000-0000-0000-0000-000000000001"))
        let high = try #require(MdevUUID(parsing: "ffffffff-ffff-ffff-ffff-ffffffffffff"))
        #expect(low < u && u < high, "ordered as their text")
        #expect(String(decoding: try JSONEncoder().encode(u), as: UTF8.self) == #""62177883-f1bb-47f0-914d-32a22e3a8804""#)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(MdevUUID.self, from: Data(#""62177883-F1BB-47F0-914D-32A22E3A8804""#.utf8))
        }
    }
}
