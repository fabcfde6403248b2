import RelayHTTP
import Testing

@testable import RelayCLI

@Suite struct AdminRoutesTests {
    /// The admin API takes the ids the relay makes, and the older 16-digit ones still stored,
    /// each with the suffix of a webhook's further calls or of a replay; nothing else reaches
    /// the store.
    @Test func deliveryIDsAreTheOnesTheRelayMakesOrMade() {
        let made = RequestID.make()
        for id in [made, "\(made)-1", "\(made)-r2", "0123456789abcdef", "0123456789abcdef-12"] {
            #expect(AdminRoutes.isDeliveryID(id), "\(id)")
        }
        for id in ["", "--all-dead", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "\(made)-", "\(made)-x1", "\(made)-1234567", "../etc"] {
            #expect(!AdminRoutes.isDeliveryID(id), "\(id)")
        }
    }
}
