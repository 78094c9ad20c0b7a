import Foundation
import HuskimoCore

/// Twilio's Pricing API, flattened into snapshot tables: a product's country list, then each country's prices, one row
/// per price entry. Phone numbers (`/v1/PhoneNumbers/Countries`, 0.3's table), voice (`/v2/Voice/Countries`: outbound
/// prefix prices and inbound call prices) and messaging (`/v1/Messaging/Countries`: each outbound carrier's price per
/// number type, and inbound SMS prices). An entry whose every field is null (what Twilio answers for a country where
/// nothing can be bought) is left out; a value longer than its column is refused, named, rather than failing the COPY.
enum PricingProduct: Sendable {
    case phoneNumbers, voice, messaging

    var listPath: String {
        switch self {
        case .phoneNumbers: return "/v1/PhoneNumbers/Countries"
        case .voice: return "/v2/Voice/Countries"
        case .messaging: return "/v1/Messaging/Countries"
        }
    }

    var table: String {
        switch self {
        case .phoneNumbers: return "twilio_pricing_phone_numbers"
        case .voice: return "twilio_pricing_voice"
        case .messaging: return "twilio_pricing_messaging"
        }
    }
}

extension TwilioExtractor {
    /// Every country on every page of a product's country list (paged by `meta.next_page_url`, on the pricing host only).
    func pricingCountries(_ product: PricingProduct, tally: inout APIClient.Tally) throws -> [(name: String, iso: String)] {
        let pricingBase = channel.pricingURL.withoutTrailingSlashes
        let user = channel.apiUser ?? ""
        var countries: [(name: String, iso: String)] = []
        var links = try PageLinks(base: pricingBase, maxPages: maxPages)
        var next: String? = "\(pricingBase)\(product.listPath)?PageSize=\(pricingPageSize)"
        let countriesKey = Array("countries".utf8), metaKey = Array("meta".utf8), nextKey = Array("next_page_url".utf8)
        let countryKey = Array("country".utf8), isoKey = Array("iso_country".utf8)
        while let url = next {
            try links.visit(url)
            let (page, nextPage) = try client.get(
                url, account: user, auth: channel.twilioAuth(client), tally: &tally
            ) { body in
                try body.withUnsafeBytes { bytes -> ([(String, String)], String?) in
                    var scanner = JSONScanner(bytes)
                    var list: [(String, String)] = []
                    var nextPage: String?
                    try scanner.forEachMember { scanner, key in
                        if scanner.key(key, is: countriesKey) {
                            try scanner.forEachElement { scanner in
                                var name = "", iso = ""
                                try scanner.forEachMember { scanner, field in
                                    let value = try scanner.readValue()
                                    if scanner.key(field, is: countryKey) { name = try scanner.string(value) }
                                    if scanner.key(field, is: isoKey) { iso = try scanner.string(value) }
                                }
                                list.append((name, iso))
                            }
                        } else if scanner.key(key, is: metaKey) {
                            try scanner.forEachMember { scanner, field in
                                let value = try scanner.readValue()
                                if scanner.key(field, is: nextKey), value.kind == .string { nextPage = try scanner.string(value) }
                            }
                        } else {
                            _ = try scanner.readValue()
                        }
                    }
                    return (list, nextPage)
                }
            }
            countries += page.map { (name: $0.0, iso: $0.1) }
            next = try nextPage.map(links.resolve)
        }
        return countries
    }

    /// One row per `phone_number_prices` entry of each country (none for a country without prices).
    func extractPricing(whenRetrieved: String, tsv: inout TSVWriter, staging: StagingWriter, tally: inout APIClient.Tally) throws -> Int {
        let pricingBase = channel.pricingURL.withoutTrailingSlashes
        let user = channel.apiUser ?? ""
        let countries = try pricingCountries(.phoneNumbers, tally: &tally)
        var rows = 0
        let pricesKey = Array("phone_number_prices".utf8), unitKey = Array("price_unit".utf8)
        let typeKey = Array("number_type".utf8), baseKey = Array("base_price".utf8), currentKey = Array("current_price".utf8)
        for country in countries {
            let url = "\(pricingBase)/v1/PhoneNumbers/Countries/\(PercentEncoding.encode(country.iso, keepSlash: false))"
            let entries = try client.get(
                url, account: user, auth: channel.twilioAuth(client), tally: &tally
            ) { body in
                try body.withUnsafeBytes { bytes -> (unit: String?, prices: [[String?]]) in
                    var scanner = JSONScanner(bytes)
                    var unit: String?
                    var prices: [[String?]] = []
                    try scanner.forEachMember { scanner, key in
                        if scanner.key(key, is: pricesKey) {
                            try scanner.forEachElement { scanner in
                                var entry: [String?] = [nil, nil, nil]
                                try scanner.forEachMember { scanner, field in
                                    let value = try scanner.readValue()
                                    let text =
                                        value.kind == .string || value.kind == .number
                                        ? (value.kind == .string
                                            ? try scanner.string(value)
                                            : String(
                                                decoding: UnsafeRawBufferPointer(rebasing: bytes[value.start..<value.end]), as: UTF8.self))
                                        : nil
                                    if scanner.key(field, is: typeKey) { entry[0] = text }
                                    if scanner.key(field, is: baseKey) { entry[1] = text }
                                    if scanner.key(field, is: currentKey) { entry[2] = text }
                                }
                                prices.append(entry)
                            }
                        } else if scanner.key(key, is: unitKey) {
                            let value = try scanner.readValue()
                            unit = value.kind == .string ? try scanner.string(value) : nil
                        } else {
                            _ = try scanner.readValue()
                        }
                    }
                    return (unit, prices)
                }
            }
            for price in entries.prices {
                tsv.text(channel.name)
                tsv.plain(whenRetrieved)
                tsv.text(country.name)
                tsv.text(country.iso)
                tsv.text(entries.unit)
                tsv.text(price[0])
                tsv.text(price[1])
                tsv.text(price[2])
                tsv.endRow()
                rows += 1
            }
            try staging.write(&tsv)
        }
        return rows
    }

    /// Voice or messaging prices: one row per entry, in the table's column order after channel_name and when_retrieved.
    func extractPricing(
        _ product: PricingProduct, whenRetrieved: String, tsv: inout TSVWriter, staging: StagingWriter, tally: inout APIClient.Tally
    ) throws -> Int {
        let pricingBase = channel.pricingURL.withoutTrailingSlashes
        let user = channel.apiUser ?? ""
        let limits = WarehouseSchema.table(product.table).map { table in table.columns.map { WarehouseSchema.byteLimit($0.type) } } ?? []
        var rows = 0
        for country in try pricingCountries(product, tally: &tally) {
            let url = "\(pricingBase)\(product.listPath)/\(PercentEncoding.encode(country.iso, keepSlash: false))"
            let entries = try client.get(url, account: user, auth: channel.twilioAuth(client), tally: &tally) { body -> [[String?]] in
                guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
                    throw ConversionError(
                        table: product.table, field: "(response)", recordSID: country.iso, reason: "expected a JSON object")
                }
                return Self.pricingRows(product, object, country: country)
            }
            for entry in entries {
                tsv.text(channel.name)
                tsv.plain(whenRetrieved)
                for (column, value) in entry.enumerated() {
                    if let value, let limit = limits.count > column + 2 ? limits[column + 2] : nil, value.utf8.count > limit {
                        throw ConversionError(
                            table: product.table, field: WarehouseSchema.table(product.table)?.columns[column + 2].name ?? "?",
                            recordSID: country.iso, reason: "a value of \(value.utf8.count) bytes; the column holds \(limit)")
                    }
                    tsv.text(value)
                }
                tsv.endRow()
                rows += 1
            }
            try staging.write(&tsv)
        }
        return rows
    }

    /// The rows of one country's voice or messaging prices (country, iso_country, direction, …, price_unit).
    static func pricingRows(_ product: PricingProduct, _ object: [String: Any], country: (name: String, iso: String)) -> [[String?]] {
        func text(_ value: Any?) -> String? {
            switch value {
            case let string as String: return string
            case let number as NSNumber: return number.stringValue
            default: return nil
            }
        }
        func entries(_ key: String) -> [[String: Any]] { (object[key] as? [Any])?.compactMap { $0 as? [String: Any] } ?? [] }
        let name = text(object["country"]) ?? country.name, iso = text(object["iso_country"]) ?? country.iso
        let unit = text(object["price_unit"])
        var rows: [[String?]] = []
        switch product {
        case .voice:
            for entry in entries("outbound_prefix_prices") {
                let prefixes = (entry["destination_prefixes"] as? [Any])?.compactMap(text).joined(separator: ",")
                let values = [prefixes, text(entry["friendly_name"]), text(entry["base_price"]), text(entry["current_price"])]
                guard values.contains(where: { $0 != nil }) else { continue }
                rows.append([name, iso, "outbound", values[0], values[1], nil, values[2], values[3], unit])
            }
            for entry in entries("inbound_call_prices") {
                let values = [text(entry["number_type"]), text(entry["base_price"]), text(entry["current_price"])]
                guard values.contains(where: { $0 != nil }) else { continue }
                rows.append([name, iso, "inbound", nil, nil, values[0], values[1], values[2], unit])
            }
        case .messaging:
            for carrier in entries("outbound_sms_prices") {
                let head = [text(carrier["carrier"]), text(carrier["mcc"]), text(carrier["mnc"])]
                for price in (carrier["prices"] as? [Any])?.compactMap({ $0 as? [String: Any] }) ?? [] {
                    let values = [text(price["number_type"]), text(price["base_price"]), text(price["current_price"])]
                    guard (head + values).contains(where: { $0 != nil }), values.contains(where: { $0 != nil }) else { continue }
                    rows.append([name, iso, "outbound"] + head + values + [unit])
                }
            }
            for entry in entries("inbound_sms_prices") {
                let values = [text(entry["number_type"]), text(entry["base_price"]), text(entry["current_price"])]
                guard values.contains(where: { $0 != nil }) else { continue }
                rows.append([name, iso, "inbound", nil, nil, nil] + values + [unit])
            }
        case .phoneNumbers:
            break
        }
        return rows
    }
}
