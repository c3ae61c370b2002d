"""What the WebUI tests expect to see, shared by the A1111 and Forge test modules."""


def reflected_pattern(steps, reflected, strong_rows, weak_rows, normal_rows):
    """The UNet batch sizes of one pass: per reflected step a strong call and a weak call (the
    default weak_sigma 'start' measures the gap without a probe call), then the sampler's own."""
    batches = []
    for i in range(steps):
        if i < reflected:
            batches += [("strong", strong_rows), ("weak", weak_rows)]
        batches.append((None, normal_rows))
    return batches
