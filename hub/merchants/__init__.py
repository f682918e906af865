"""Merchants and their coupons: books funded into a coupon fund in the ledger, codes given to plates or scanned by
drivers, and the coupons redeemed against lot sessions and paid to the operator when the session closes."""
