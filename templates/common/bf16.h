// bf16 as raw bits, shared by host and device code (NVRTC, hipRTC, g++).
#pragma once
