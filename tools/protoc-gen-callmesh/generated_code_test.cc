// The code generated for testdata/shop.proto compiles, links against the SDK and decodes
// completions per method (the end-to-end path through a sidecar is covered by tests/examples).
#include <vector>

#include "gtest/gtest.h"
#include "tools/protoc-gen-callmesh/testdata/shop.callmesh.h"

namespace shop::v1 {
namespace {

class RecordingShopCallbacks final : public ShopCallbacks {
 public:
  void OnPlaceOrder(const ::callmesh::CallInfo& call, const Order_Receipt& reply) override {
    events.push_back("OnPlaceOrder " + call.cid + " " + reply.order_id());
  }
  void OnPlaceOrderError(const ::callmesh::CallInfo& call, const absl::Status& error) override {
    events.push_back("OnPlaceOrderError " + call.cid + " " + error.ToString());
  }
  std::vector<std::string> events;
};

callmesh::v1::Completion CompletionOf(const std::string& method, callmesh::v1::CallState state,
                                      const std::string& reply) {
  callmesh::v1::Completion completion;
  completion.set_cid("c1");
  completion.set_method(method);
  completion.set_state(state);
  completion.set_reply(reply);
  return completion;
}

TEST(GeneratedCallbacks, DecodeTheReplyOfEachMethod) {
  RecordingShopCallbacks callbacks;
  EXPECT_STREQ(callbacks.callmesh_grpc_service(), "shop.v1.Shop");
  Order_Receipt receipt;
  receipt.set_order_id("o-42");
  ASSERT_TRUE(callbacks
                  .HandleCompletion(CompletionOf("shop.v1.Shop/PlaceOrder",
                                                 callmesh::v1::CALL_STATE_SUCCEEDED,
                                                 receipt.SerializeAsString()))
                  .ok());
  callmesh::v1::Completion failed =
      CompletionOf("shop.v1.Shop/PlaceOrder", callmesh::v1::CALL_STATE_FAILED, "");
  failed.set_status_code(static_cast<int>(absl::StatusCode::kOutOfRange));
  failed.set_status_message("sold out");
  ASSERT_TRUE(callbacks.HandleCompletion(failed).ok());
  ASSERT_TRUE(callbacks
                  .HandleCompletion(CompletionOf("shop.v1.Shop/PlaceOrder",
                                                 callmesh::v1::CALL_STATE_SUCCEEDED, "\xff\xff"))
                  .ok());
  ASSERT_EQ(callbacks.events.size(), 3u);
  EXPECT_EQ(callbacks.events[0], "OnPlaceOrder c1 o-42");
  EXPECT_EQ(callbacks.events[1], "OnPlaceOrderError c1 OUT_OF_RANGE: sold out");
  EXPECT_EQ(callbacks.events[2],
            "OnPlaceOrderError c1 INTERNAL: reply of shop.v1.Shop/PlaceOrder is not a valid "
            "shop.v1.Order.Receipt");
  // The default handlers of other methods log and acknowledge.
  EXPECT_TRUE(callbacks
                  .HandleCompletion(
                      CompletionOf("shop.v1.Shop/Ping", callmesh::v1::CALL_STATE_SUCCEEDED, ""))
                  .ok());
  // A method of another service is not this handler's.
  absl::Status other = callbacks.HandleCompletion(
      CompletionOf("shop.v1.Stock/Count", callmesh::v1::CALL_STATE_SUCCEEDED, ""));
  EXPECT_EQ(other.code(), absl::StatusCode::kNotFound) << other;
}

TEST(GeneratedClient, ReportsTheMeshError) {
  // Nothing listens on port 1: the typed call returns the mesh's UNAVAILABLE unchanged.
  callmesh::Mesh mesh({.sidecar = "127.0.0.1:1", .source = "shop-test"});
  StockClient stock(mesh, "stock");
  Item item;
  item.set_sku("x");
  absl::StatusOr<Item> counted = stock.Count(item, {.timeout = absl::Seconds(5)});
  EXPECT_EQ(counted.status().code(), absl::StatusCode::kUnavailable) << counted.status();
  EXPECT_EQ(stock.CountAsync(item).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_STREQ(StockClient::kGrpcService, "shop.v1.Stock");
}

}  // namespace
}  // namespace shop::v1
