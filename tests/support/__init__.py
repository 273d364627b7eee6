"""What tests share: builders of agreements, orders and consents, fakes, and fault injection."""
