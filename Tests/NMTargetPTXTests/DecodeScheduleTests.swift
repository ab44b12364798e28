import Testing
@testable import NMTargetPTX

/// Experimental schedules of the decode kernels: the last round cut in halves
/// (`LinearKernel.halfUnits`) and the first batch of weights loaded after the wait (`weightsAfterWait`).
@Suite struct DecodeScheduleTests {
    func lines(_ k: LinearKernel) -> [String] {
        k.ptx().split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    }
    func count(_ text: [String], _ prefix: String) -> Int { text.filter { $0.hasPrefix(prefix) }.count }

    @Test func theSixthRoundOf4096x11008GoesToTwelveWarpsInHalves() throws {
        // 86 units over 16 warps: five whole rounds, then 6 units for warps 0–5, now 12 halves.
        let plain = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 11008, tokenTiles: 2, dependentLaunch: true)
        let k = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 11008, tokenTiles: 2, dependentLaunch: true,
                                          halfUnits: true)
        #expect(k.halfRound == 5 && k.entry == plain.entry + "_h")
        let text = lines(k), plainText = lines(plain)
        // The round's guard takes 12 warps; warps 6–11 take the units 6 back.
        #expect(plainText.contains { $0.hasSuffix(", %r3, 6;") && $0.hasPrefix("setp.lt.u32") })
        #expect(text.contains { $0.hasSuffix(", %r3, 12;") && $0.hasPrefix("setp.lt.u32") })
        let first = try #require(text.first { $0.hasPrefix("selp.b32") && $0.contains(", 0, -6, ") })
        let predicate = String(first.split(separator: " ").last!.dropLast())
        #expect(text.contains("@!\(predicate) bra HALF_SECOND_7;"))
        // Each warp's loads are the plain kernel's (the half round loads whole units); the
        // half round runs 2 of its 4 steps in each branch: 2 row tiles × 2 token tiles × 2 steps.
        #expect(count(text, "@%p0 ld.global.nc") == count(plainText, "@%p0 ld.global.nc"))
        #expect(count(text, "mma.sp") == count(plainText, "mma.sp"))
        let second = try #require(text.firstIndex(of: "HALF_SECOND_7:")), done = try #require(text.firstIndex(of: "HALVES_DONE_8:"))
        let firstHalf = text[text.firstIndex(of: "@!\(predicate) bra HALF_SECOND_7;")!..<second]
        #expect(count(Array(firstHalf), "mma.sp") == 8 && count(Array(text[second..<done]), "mma.sp") == 8)
        #expect(firstHalf.filter { $0.hasPrefix("mma.sp") }.allSatisfy { $0.hasSuffix(", 0;") })
        #expect(text[second..<done].filter { $0.hasPrefix("mma.sp") }.allSatisfy { $0.hasSuffix(", 1;") })
    }

    @Test func itAppliesOnlyWhereTheLastRoundFitsHalfTheWarps() throws {
        // 4096² at 16 warps: 32 units, two whole rounds; 9 units over 16 warps: 18 halves > 16.
        for columns in [4096, 1152] {
            let k = try LinearKernel(weights: .int4, rows: 64, columns: columns, tokenTiles: 1, warps: 16, halfUnits: true)
            #expect(k.halfRound == nil && !k.entry.hasSuffix("_h"))
        }
        // 9 units over 4 warps: the third round's one unit for two warps; 8 warps: 1 of 8 for 2.
        for (warps, halfRound) in [(4, 2), (8, 1)] {
            for weights in LinearKernel.Weights.allCases {
                let k = try LinearKernel(weights: weights, rows: 64, columns: 1152, tokenTiles: 2, warps: warps, halfUnits: true)
                #expect(k.halfRound == halfRound && k.entry.hasSuffix("_h"))
                #expect(lines(k).contains { $0.hasPrefix("setp.lt.u32") && $0.hasSuffix(", 2;") })
            }
        }
    }

    @Test func theTensorCopiesOfTheHalvesComeFromTheSharedUnit() throws {
        let k = try LinearKernel.standard(weights: .int4Sparse24, rows: 4096, columns: 11008, tokenTiles: 2, dependentLaunch: true,
                                          tensorActivations: true, halfUnits: true)
        let text = lines(k)
        #expect(k.entry.hasSuffix("_ta_h"))
        // Round 5's column: the lane's own column moved back 6 units (768) for warps 6–11, plus 80 units.
        let selp = try #require(text.firstIndex { $0.hasPrefix("selp.b32") && $0.contains(", 0, -6, ") })
        let back = String(text[selp].split(separator: " ")[1].dropLast())
        let moved = try #require(text[selp...].first { $0.hasPrefix("mad.lo.u32") && $0.contains(", \(back), 128, ") })
        let column = String(moved.split(separator: " ")[1].dropLast())
        #expect(text.contains { $0.hasPrefix("add.u32") && $0.contains(", \(column), \(80 * 128);") })
        #expect(text.contains { $0.hasPrefix("add.u32") && $0.contains(", \(column), \(80 * 128 + 64);") })
    }

    @Test func weightsAfterTheWaitAreWeakAndFollowIt() throws {
        for (rows, columns, tokenTiles) in [(4096, 4096, 2), (4096, 11008, 2), (4096, 4096, 1)] {
            let plain = try LinearKernel.standard(weights: .int4Sparse24, rows: rows, columns: columns, tokenTiles: tokenTiles,
                                                  dependentLaunch: true)
            let k = try LinearKernel.standard(weights: .int4Sparse24, rows: rows, columns: columns, tokenTiles: tokenTiles,
                                              dependentLaunch: true, weightsAfterWait: true)
            #expect(k.entry == plain.entry + "_wk_aw")
            let text = lines(k)
            let wait = try #require(text.firstIndex(of: "griddepcontrol.wait;"))
            // Nothing is loaded before the wait (the L2 prefetches stay there); the first batch's
            // weights are weak and come first after it, the later batches' stay `.nc`.
            #expect(!text[..<wait].contains { $0.contains("ld.global") })
            #expect(text[..<wait].filter { $0.contains("prefetch.global.L2") }.count
                    == lines(plain).prefix { $0 != "griddepcontrol.wait;" }.filter { $0.contains("prefetch.global.L2") }.count)
            #expect(text[wait + 1].hasPrefix("ld.global.v4.u32") || text[wait + 1].hasPrefix("@%p0 ld.global.v4.u32"))
            // The same loads, moved: where a warp loads its units in one batch, none is `.nc`.
            #expect(text.filter { $0.contains("ld.global") }.count == lines(plain).filter { $0.contains("ld.global") }.count)
            #expect(plain.oneBatch == !text.contains { $0.contains("ld.global.nc") })
        }
        // Without dependent launches there is no wait to move past: the plain kernel.
        let plain = try LinearKernel.standard(weights: .int4, rows: 64, columns: 1152, tokenTiles: 1)
        let k = try LinearKernel.standard(weights: .int4, rows: 64, columns: 1152, tokenTiles: 1, weightsAfterWait: true)
        #expect(k.entry == plain.entry && k.ptx() == plain.ptx())
    }
}
