import Foundation
import HuskimoCore

/// The sandbox's voice and messaging prices per country (Twilio's `/v2/Voice/Countries/{iso}` and
/// `/v1/Messaging/Countries/{iso}`), deterministic per country, with the hard cases: hundreds of prefixes in one entry,
/// non-ASCII carrier and country names, an entry on a carrier with two number types, and for some synthetic countries
/// the all-null record Twilio answers where nothing can be bought.
package enum SandboxPricing {
    /// One country's answer and the rows a correct load holds (after channel_name and when_retrieved).
    package struct Country: Sendable {
        package var json: [UInt8]
        package var rows: [[String?]]
    }

    static func nothingToBuy(_ iso: String, _ h: UInt64) -> Bool { iso >= "Q" && h % 5 == 0 }

    package static func voice(iso: String, name: String) -> Country {
        let h = SandboxData.hash("voice", iso)
        var rows: [[String?]] = []
        var outbound: [String] = []
        var inbound: [String] = []
        if nothingToBuy(iso, h) {
            inbound = [#"{"number_type": null, "base_price": null, "current_price": null}"#]
        } else {
            for k in 0..<Int(1 + h % 3) {
                // The US entry lists 300 prefixes (Twilio's do run to hundreds).
                let count = iso == "US" && k == 0 ? 300 : Int(1 + (h >> (4 * k)) % 6)
                let prefixes = (0..<count).map { "\(iso == "US" ? "1" : "")\(200 + (Int(h >> 3) + 7 * $0 + k) % 700)" }
                let friendly = "Programmable Outbound Minute - \(name) - \(["Mobile", "Landline", "Other «Ω»"][k])"
                let base = String(format: "%.4f", Double((h >> (5 * k)) % 900) / 1000 + 0.01)
                var o = JSONObject()
                o.raw("destination_prefixes", "[" + prefixes.map { "\"\($0)\"" }.joined(separator: ", ") + "]")
                o.string("friendly_name", friendly)
                o.string("base_price", base)
                o.string("current_price", base)
                outbound.append(String(decoding: o.finish(), as: UTF8.self))
                rows.append([name, iso, "outbound", prefixes.joined(separator: ","), friendly, nil, base, base, "USD"])
            }
            for (k, type) in ["local", "mobile", "toll free"].prefix(Int(h % 4)).enumerated() {
                let base = String(format: "%.4f", Double((h >> (7 * k)) % 100) / 1000 + 0.0085)
                inbound.append(#"{"number_type": "\#(type)", "base_price": "\#(base)", "current_price": "\#(base)"}"#)
                rows.append([name, iso, "inbound", nil, nil, type, base, base, "USD"])
            }
        }
        var o = JSONObject()
        o.string("country", name)
        o.string("iso_country", iso)
        o.raw("outbound_prefix_prices", "[" + outbound.joined(separator: ", ") + "]")
        o.raw("inbound_call_prices", "[" + inbound.joined(separator: ", ") + "]")
        o.string("price_unit", "USD")
        return Country(json: o.finish(), rows: rows)
    }

    package static func messaging(iso: String, name: String) -> Country {
        let h = SandboxData.hash("messaging", iso)
        var rows: [[String?]] = []
        var outbound: [String] = []
        var inbound: [String] = []
        if nothingToBuy(iso, h) {
            outbound = [
                #"{"carrier": null, "mcc": null, "mnc": null, "prices": [{"number_type": null, "base_price": null, "current_price": null}]}"#
            ]
        } else {
            let carriers = ["AT&T", "Télécom «Ω» \(iso)", "Carrier \(iso) \"Mobile\"", "中国移动"]
            for k in 0..<Int(1 + h % 3) {
                let carrier = carriers[(Int(h >> 6) + k) % carriers.count]
                let (mcc, mnc) = (String(300 + Int(h % 400)), String(format: "%02d", k + 1))
                var prices: [String] = []
                for (j, type) in ["mobile", "local"].prefix(1 + Int((h >> k) % 2)).enumerated() {
                    let base = String(format: "%.4f", Double((h >> (3 * k + j)) % 500) / 10000 + 0.0075)
                    prices.append(#"{"number_type": "\#(type)", "base_price": "\#(base)", "current_price": "\#(base)"}"#)
                    rows.append([name, iso, "outbound", carrier, mcc, mnc, type, base, base, "USD"])
                }
                var o = JSONObject()
                o.string("carrier", carrier)
                o.string("mcc", mcc)
                o.string("mnc", mnc)
                o.raw("prices", "[" + prices.joined(separator: ", ") + "]")
                outbound.append(String(decoding: o.finish(), as: UTF8.self))
            }
            for type in ["local", "mobile"].prefix(Int(h % 3)) {
                inbound.append(#"{"number_type": "\#(type)", "base_price": "0.0075", "current_price": "0.0075"}"#)
                rows.append([name, iso, "inbound", nil, nil, nil, type, "0.0075", "0.0075", "USD"])
            }
        }
        var o = JSONObject()
        o.string("country", name)
        o.string("iso_country", iso)
        o.raw("outbound_sms_prices", "[" + outbound.joined(separator: ", ") + "]")
        o.raw("inbound_sms_prices", "[" + inbound.joined(separator: ", ") + "]")
        o.string("price_unit", "USD")
        return Country(json: o.finish(), rows: rows)
    }

    /// Every row a correct snapshot of `product` (`voice` or `messaging`) holds, over every country.
    package static func expectedRows(_ product: String) -> [[String?]] {
        SandboxData.countries.flatMap {
            product == "voice" ? voice(iso: $0.iso, name: $0.name).rows : messaging(iso: $0.iso, name: $0.name).rows
        }
    }
}
