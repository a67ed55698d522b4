"""HTTP callbacks (webhooks): signing, request forms and the delivery worker (issue 12).

The outbox itself (what is owed, written in its cause's transaction) is store/webhooks.py;
docs/webhooks.md is the receiver's guide.
"""
