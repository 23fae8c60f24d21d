// Helpers shared by the attention kernels: the -inf that marks a masked score and the byte-mask reader.
#ifndef VKMHA_COMMON_MASK_GLSL
#define VKMHA_COMMON_MASK_GLSL

// GLSL has no -inf literal, and glslang will not fold uintBitsToFloat into a const, hence a function.
float neg_inf()
{
    return uintBitsToFloat(0xff800000u);
}

// Byte masks arrive as uint[] because core Vulkan 1.1 has no 8-bit storage; `word` must be
// data[e >> 2]. Little-endian packing, as the host wrote the bytes.
uint mask_byte(uint word, uint e)
{
    return (word >> (8u * (e & 3u))) & 0xFFu;
}

#endif
