def response(hey_bob):
    """What Bob answers to the remark hey_bob."""
    raise NotImplementedError("response")
