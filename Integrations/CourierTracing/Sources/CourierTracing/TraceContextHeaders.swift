public import Courier
public import Instrumentation

/// Writes what an instrument propagates (a W3C `traceparent` and `tracestate`, baggage…) into
/// a message's headers.
public struct MessageHeadersInjector: Injector {
    public init() {}

    public func inject(_ value: String, forKey key: String, into carrier: inout MessageHeaders) {
        carrier[key] = value
    }
}

/// Reads what an instrument propagated from a message's headers.
public struct MessageHeadersExtractor: Extractor {
    public init() {}

    public func extract(key: String, from carrier: MessageHeaders) -> String? {
        carrier[key]
    }
}

extension MessageHeaders {
    /// These headers with what the bootstrapped instrument (`InstrumentationSystem.instrument`)
    /// propagates of `context` added, such as the trace context of the span that sends:
    ///
    /// ```swift
    /// try await withSpan("place order", ofKind: .producer) { _ in
    ///     try await node.send(order, to: "ledger", headers: ["content-type": "application/json"].injecting(.current))
    /// }
    /// ```
    ///
    /// A header given here keeps its value (the instrument's value for the same name is
    /// dropped); `context` nil, or no instrument bootstrapped, leaves the headers as they are.
    /// The headers' limits (``MessageHeaders``) apply to what the instrument adds too.
    public func injecting(_ context: ServiceContext?) -> MessageHeaders {
        guard let context else { return self }
        var propagated = MessageHeaders()
        InstrumentationSystem.instrument.inject(context, into: &propagated, using: MessageHeadersInjector())
        var result = self
        for header in propagated where result[header.name] == nil {
            result[header.name] = header.value
        }
        return result
    }
}

extension IncomingMessage {
    /// The service context the sender propagated in the message's headers, as the
    /// bootstrapped instrument reads them (starting from `ServiceContext.topLevel`): the
    /// parent for the span that processes the message.
    ///
    /// ```swift
    /// for await message in node.messages {
    ///     try await withSpan("book order", context: message.serviceContext, ofKind: .consumer) { _ in
    ///         try await book(message)
    ///     }
    ///     message.acknowledge()
    /// }
    /// ```
    public var serviceContext: ServiceContext {
        var context = ServiceContext.topLevel
        InstrumentationSystem.instrument.extract(headers, into: &context, using: MessageHeadersExtractor())
        return context
    }
}
