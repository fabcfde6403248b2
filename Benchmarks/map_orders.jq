# The benchmark's 10-field mapping in jq, for comparison (jq -c -f Benchmarks/map_orders.jq ORDERS.jsonl).
{token: "***",
 uuid: (.note_attributes[] | select(.name == "happytalk_uuid") | .value),
 room_id: (.note_attributes[] | select(.name == "happytalk_room_id") | .value),
 order_number: (.order_number | tostring),
 username: (.customer.last_name + .customer.first_name),
 phone: (.customer.phone | gsub("[^0-9]"; "")),
 parcel_number: (.fulfillments[-1].tracking_number | gsub("[^0-9]"; "")),
 email: .email,
 product_number: (.line_items[0].product_id | tostring),
 parameter1: .financial_status,
 scenario_next: "Y"}
