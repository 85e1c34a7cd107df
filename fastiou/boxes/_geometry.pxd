# The box geometry the compiled kernels share (boxes and NMS): NaN-propagating min/max, the
# corner conversion and the intersection. Inline, so both extensions compile their own copy of
# one source. The same float operations, in the same order, as ``_formulas.py``.

ctypedef fused real:
    float
    double


# NaN-propagating min/max (as torch.min/max), written as two selects so the compiler emits
# branch-free vector code: a branch on random box coordinates mispredicts half the time.
cdef inline real pmin(real a, real b) noexcept nogil:
    cdef real m = a if a < b else b
    return a if a != a else m

cdef inline real pmax(real a, real b) noexcept nogil:
    cdef real m = a if a > b else b
    return a if a != a else m

cdef inline real clamp0(real x) noexcept nogil:
    return 0 if x < 0 else x


cdef inline real inter_area(real ax1, real ay1, real ax2, real ay2,
                            real bx1, real by1, real bx2, real by2, real offset) noexcept nogil:
    return (clamp0(pmin(ax2, bx2) - pmax(ax1, bx1) + offset)
            * clamp0(pmin(ay2, by2) - pmax(ay1, by1) + offset))


cdef inline void corners(int fmt, real c0, real c1, real c2, real c3, real *xyxy) noexcept nogil:
    """(x1, y1, x2, y2) of a box in format ``fmt`` (0 xyxy, 1 xywh, 2 cxcywh)."""
    cdef real half = 0.5
    if fmt == 1:
        xyxy[0], xyxy[1], xyxy[2], xyxy[3] = c0, c1, c0 + c2, c1 + c3
    elif fmt == 2:
        xyxy[0], xyxy[1] = c0 - half * c2, c1 - half * c3
        xyxy[2], xyxy[3] = c0 + half * c2, c1 + half * c3
    else:
        xyxy[0], xyxy[1], xyxy[2], xyxy[3] = c0, c1, c2, c3
